"""Scope: the Dagster UI — a real dagster-webserver on workspace.yaml, driven through its GraphQL API."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from pipeline.automation import GATE_JOB
from pipeline.contract import load_contracts
from pipeline.settings import REPO_ROOT

WEBSERVER = Path(sys.executable).parent / "dagster-webserver"
TABLES = {
    "payments": ("customers", "charges", "invoices"),
    "crm": ("companies", "contacts", "deals"),
}
OWNERS = {"payments": "team:payments-data", "crm": "team:revops-data"}
LOOKER_DEPS = {
    "looker/payments_etl": {"lookml/payments"}
    | {f"published/payments/{t}" for t in TABLES["payments"]},
    "looker/revenue_by_customer": {
        "lookml/payments",
        "published/payments/charges",
        "published/payments/customers",
    },
    "looker/crm_etl": {"lookml/crm"} | {f"published/crm/{t}" for t in TABLES["crm"]},
}
PYTHON_WARNING = re.compile(r"\w+Warning: .*")  # how `warnings` prints, raw or via dagster's log

WORKSPACE = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name jobs { name } } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""
ASSET_GRAPH = """
query AssetGraph {
  assetNodes {
    assetKey { path }
    groupName
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    dependencyKeys { path }
  }
}
"""
ASSET_CONTRACT = """
query AssetContract {
  assetNodes {
    assetKey { path }
    internalFreshnessPolicy {
      __typename
      ... on TimeWindowFreshnessPolicy { failWindowSeconds }
    }
    metadataEntries {
      label
      __typename
      ... on TextMetadataEntry { text }
      ... on PathMetadataEntry { path }
      ... on TableSchemaMetadataEntry {
        schema {
          columns {
            name type description
            constraints { nullable unique other }
            tags { key value }
          }
        }
      }
    }
  }
}
"""
ASSET_CHECKS = """
query AssetChecks($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      assetChecksOrError {
        __typename
        ... on AssetChecks { checks { name blocking } }
      }
    }
  }
}
"""
LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""
RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on PythonError { message }
  }
}
"""
LATEST_MATERIALIZATIONS = """
query LatestMaterializations($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys, loadMaterializations: true) {
    assetKey { path }
    assetMaterializations(limit: 1) {
      runId
      metadataEntries {
        label
        __typename
        ... on IntMetadataEntry { intValue }
      }
    }
  }
}
"""
RUN_TAGS = """
query RunTags($runId: ID!) {
  runOrError(runId: $runId) { ... on Run { tags { key value } } }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def key(path: list[str]) -> str:
    return "/".join(path)


class Webserver:
    def __init__(self, port: int, process: subprocess.Popen, logs: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self.logs = logs

    def output(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))

    def answers(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
            return response.status == 200

    def gql(self, query: str, **variables) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]

    def wait_until(self, ready, what: str, timeout: float):
        """Poll `ready()` until it returns something truthy; fail with the server's output if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"webserver exited:\n{self.output()[-5000:]}"
            try:
                if result := ready():
                    return result
            except OSError:  # not listening yet
                pass
            time.sleep(0.5)
        pytest.fail(f"{what} not ready after {timeout:.0f}s:\n{self.output()[-5000:]}")


@pytest.fixture
def webserver(tmp_path):
    """dagster-webserver on workspace.yaml with its own DAGSTER_HOME; killed with its children."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    # The shipped QueuedRunCoordinator leaves runs queued until `dagster-daemon` dequeues them.
    # Launching directly keeps the test to one server and its children: a daemon would also start
    # the `fivetran_syncs` sensor (RUNNING by default), polling the sandbox while the run syncs.
    config["run_coordinator"] = {
        "module": "dagster._core.run_coordinator",
        "class": "DefaultRunCoordinator",
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    with open(tmp_path / "stdout.log", "w") as out, open(tmp_path / "stderr.log", "w") as err:
        process = subprocess.Popen(
            [str(WEBSERVER), "-h", "127.0.0.1", "-p", str(port)]
            + ["-w", str(REPO_ROOT / "workspace.yaml")],
            cwd=home,  # dagster.yaml's relative storage paths land in the test's own folder
            env={**os.environ, "DAGSTER_HOME": str(home)},  # TOLLGATE_DATA_DIR from conftest
            stdout=out,
            stderr=err,
            start_new_session=True,  # one process group: code server and run workers included
        )
    server = Webserver(port, process, tmp_path)
    try:
        server.wait_until(server.answers, "server", 120)
        server.wait_until(
            lambda: all(
                entry["loadStatus"] == "LOADED"
                for entry in server.gql(WORKSPACE)["workspaceOrError"]["locationEntries"]
            ),
            "code location",
            120,
        )
        yield server
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


def test_ui_shows_assets_owners_groups_lineage_and_checks(webserver):
    workspace = webserver.gql(WORKSPACE)["workspaceOrError"]
    assert workspace["__typename"] == "Workspace", workspace
    [entry] = workspace["locationEntries"]
    location = entry["locationOrLoadError"]
    assert (entry["name"], location["__typename"]) == ("tollgate", "RepositoryLocation"), location
    assert GATE_JOB in {job["name"] for repo in location["repositories"] for job in repo["jobs"]}

    nodes = {
        key(node["assetKey"]["path"]): node for node in webserver.gql(ASSET_GRAPH)["assetNodes"]
    }
    fivetran = {f"fivetran/{c}/{t}": c for c, tables in TABLES.items() for t in tables}
    published = {f"published/{c}/{t}": c for c, tables in TABLES.items() for t in tables}
    lookml = {"lookml/payments", "lookml/crm"}
    assert set(nodes) == set(fivetran) | set(published) | lookml | set(LOOKER_DEPS)
    for asset, connector in (fivetran | published).items():
        assert nodes[asset]["groupName"] == connector
        assert [f"team:{o['team']}" for o in nodes[asset]["owners"]] == [OWNERS[connector]]
    contracts = load_contracts()
    for asset in published:
        _, connector, table = asset.split("/")
        # Its landed table, and those its foreign keys reference: it waits for their checks.
        parents = {f"fivetran/{c}/{t}" for c, t in contracts[connector].tables[table].parents}
        expected = {f"fivetran/{connector}/{table}"} | parents
        assert {key(d["path"]) for d in nodes[asset]["dependencyKeys"]} == expected
    charges = {key(d["path"]) for d in nodes["published/payments/charges"]["dependencyKeys"]}
    assert {"fivetran/payments/customers", "fivetran/payments/invoices"} < charges
    for asset, deps in LOOKER_DEPS.items():
        assert nodes[asset]["groupName"] == "looker"
        assert {key(dep["path"]) for dep in nodes[asset]["dependencyKeys"]} == deps
        # Owned by whoever owns the tables it reads: the people a held-back refresh waits on.
        readers = {OWNERS[dep.split("/")[1]] for dep in deps}
        assert {f"team:{o['team']}" for o in nodes[asset]["owners"]} == readers
    for model in lookml:  # so are a model's Looker checks, and their failures
        owners = [f"team:{o['team']}" for o in nodes[model]["owners"]]
        assert owners == [OWNERS[model.split("/")[1]]]

    contract = {key(n["assetKey"]["path"]): n for n in webserver.gql(ASSET_CONTRACT)["assetNodes"]}
    charges_node = contract["fivetran/payments/charges"]
    entries = {e["label"]: e for e in charges_node["metadataEntries"]}
    columns = {c["name"]: c for c in entries["dagster/column_schema"]["schema"]["columns"]}
    assert columns["id"]["type"] == "VARCHAR"
    assert columns["id"]["constraints"] == {
        "nullable": False,
        "unique": True,
        "other": ["primary key"],
    }
    assert columns["customer_id"]["constraints"]["other"] == ["foreign key → customers.id"]
    assert columns["amount"]["description"] == "Amount in the smallest currency unit."
    contacts = contract["fivetran/crm/contacts"]["metadataEntries"]
    [schema] = [e["schema"] for e in contacts if e["label"] == "dagster/column_schema"]
    email = next(c for c in schema["columns"] if c["name"] == "email")
    assert {t["key"]: t["value"] for t in email["tags"]} == {
        "classification": "email",
        "pii": "hashed",
    }
    assert charges_node["internalFreshnessPolicy"] == {
        "__typename": "TimeWindowFreshnessPolicy",
        "failWindowSeconds": 24 * 3600,
    }
    assert not [
        (asset, e["label"])
        for asset, node in contract.items()
        for e in node["metadataEntries"]
        if "unserializable" in json.dumps(e)
    ]

    charges = webserver.gql(ASSET_CHECKS, assetKey={"path": ["fivetran", "payments", "charges"]})
    checks = charges["assetNodeOrError"]["assetChecksOrError"]["checks"]
    blocking = {check["name"]: check["blocking"] for check in checks}
    assert blocking["required_columns_are_not_null"] is True
    assert blocking["no_unexpected_columns"] is False  # WARN: shown, never holds Looker back

    assert not PYTHON_WARNING.findall(webserver.output())


def test_gate_launched_from_ui_succeeds_and_refreshes_looker(webserver):
    [location] = webserver.gql(WORKSPACE)["workspaceOrError"]["locationEntries"]
    [repository] = [
        repo
        for repo in location["locationOrLoadError"]["repositories"]
        if GATE_JOB in {job["name"] for job in repo["jobs"]}
    ]
    selector = {
        "repositoryLocationName": location["name"],
        "repositoryName": repository["name"],
        "jobName": GATE_JOB,
    }
    launched = webserver.gql(LAUNCH_RUN, executionParams={"selector": selector})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished():
        run = webserver.gql(RUN_STATUS, runId=run_id)["runOrError"]
        assert run["__typename"] == "Run", run
        return run["status"] if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"} else None

    status = webserver.wait_until(finished, f"run {run_id}", 900)
    assert status == "SUCCESS", webserver.output()[-5000:]

    looker_keys = [{"path": asset.split("/")} for asset in LOOKER_DEPS]
    nodes = webserver.gql(LATEST_MATERIALIZATIONS, assetKeys=looker_keys)["assetNodes"]
    latest = {
        key(n["assetKey"]["path"]): [m["runId"] for m in n["assetMaterializations"]] for n in nodes
    }
    assert latest == {asset: [run_id] for asset in LOOKER_DEPS}

    [charges] = webserver.gql(
        LATEST_MATERIALIZATIONS, assetKeys=[{"path": ["fivetran", "payments", "charges"]}]
    )["assetNodes"]
    entries = {e["label"]: e for e in charges["assetMaterializations"][0]["metadataEntries"]}
    assert entries["dagster/row_count"]["intValue"] == 10000
    assert entries["dagster-fivetran/sync_completed_at"]["__typename"] == "TimestampMetadataEntry"
    assert "dagster/storage_kind" not in entries  # dagster-fivetran put the connector's service
    run = webserver.gql(RUN_TAGS, runId=run_id)["runOrError"]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["tollgate/environment"] == "sandbox" and tags["tollgate/result"] == "passed"
    assert tags["tollgate/snowflake"] == "DuckDB (local sandbox warehouse)"
    # The run worker and every step process loaded the code location too.
    assert not PYTHON_WARNING.findall(webserver.output())
