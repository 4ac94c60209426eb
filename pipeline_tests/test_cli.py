"""Scope: `dg launch` and `dagster asset materialize` as CI runs them, and the gate job as `make
run` launches it — real CLIs, both executors, exit codes, the run summary."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from pipeline import selection
from pipeline.sandbox import fivetran_api, looker_api
from pipeline.settings import REPO_ROOT
from pipeline_tests.gate import LOOKER_KEYS

DAGSTER = Path(sys.executable).parent / "dagster"
DG = Path(sys.executable).parent / "dg"
# Both CLIs run the same code path: `dg launch --assets` calls `dagster asset materialize`.


def dagster_cli(select: str = "*") -> list[str]:
    return [str(DAGSTER), "asset", "materialize", "-m", "pipeline", "--select", select]


DG_CLI = [str(DG), "launch", "--assets", "*", "--module-name", "pipeline"]
# What `make run` launches for everything: the job, so no step rebuilds a subset of it.
GATE_JOB_CLI = [str(DG), "launch", "--job", "tollgate_gate", "--module-name", "pipeline"]
# What real services get by default, and anyone can choose: a process per step.
MULTIPROCESS = ["--config-json", '{"execution": {"config": {"multiprocess": {}}}}']


def start(home: Path, defects: str = "", cli: list[str] | None = None) -> subprocess.Popen:
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "TOLLGATE_SANDBOX_DEFECTS": defects}
    return subprocess.Popen(
        cli or dagster_cli(),
        cwd=home,  # dagster.yaml's relative storage paths land under the test's own folder
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=1200)
    return process.returncode, output


def materialize(home: Path, defects: str = "", cli=None) -> subprocess.CompletedProcess:
    code, output = finish(start(home, defects, cli))
    return subprocess.CompletedProcess([], code, output, "")


def materialized(home: Path, keys: set[AssetKey]) -> set[AssetKey]:
    with DagsterInstance.from_config(str(home)) as instance:
        return {key for key in keys if instance.get_latest_materialization_event(key)}


@pytest.mark.parametrize(
    ("defects", "cli"), [("", GATE_JOB_CLI), ("null_ids", dagster_cli() + MULTIPROCESS)]
)
def test_cli_exit_code_follows_blocking_checks(tmp_path, monkeypatch, defects, cli):
    """`make run`'s default (the sandbox's steps in one process) on a clean sync; CI's
    `dagster asset materialize` with a process per step, as real services run, on a defect."""
    home = tmp_path / "dagster_home"
    run = materialize(home, defects, cli)
    output = run.stdout + run.stderr
    monkeypatch.chdir(home)  # read the run's storage through the same relative paths
    fivetran = {
        AssetKey(["fivetran", "payments", "charges"]),
        AssetKey(["fivetran", "crm", "deals"]),
    }
    assert materialized(home, fivetran) == fivetran, output[-3000:]
    # Definitions are built by the CLI, and with a process per step once more by the executor's
    # forkserver, which every step forks from; a step that rebuilt them would list the Fivetran
    # groups again. In one process (the sandbox's default) no step process exists.
    listings = [r for r in fivetran_api.requests_seen() if r["path"] == "/v1/groups"]
    builds = 2 if MULTIPROCESS[-1] in cli else 1
    assert len(listings) == builds, f"definitions were built {len(listings)} times, not {builds}"
    assert ("Executing steps in process" in output) == (builds == 1), output[-3000:]
    # Said once, by the process that loaded the code, not again by each step process.
    assert output.count("tollgate loaded: TOLLGATE_ENV=sandbox") == 1, output[-3000:]
    job = "tollgate_gate" if cli == GATE_JOB_CLI else "__ASSET_JOB"
    assert f" - INFO - {job} - " in output.split("tollgate: TOLLGATE_ENV=sandbox")[0][-300:]
    with DagsterInstance.from_config(str(home)) as instance:
        # The CLI's own run is the first one (newest first); the sandbox may have started others.
        tags = instance.get_run_records()[-1].dagster_run.tags
    assert tags["tollgate/environment"] == "sandbox" and tags["tollgate/selection"] == "*"
    assert tags["tollgate/git_revision"] not in ("", "unknown")
    if defects:
        assert run.returncode == 1, output[-3000:]
        assert materialized(home, LOOKER_KEYS) == set()
        # The reason is logged where people read it (not only at DEBUG), then summarised.
        assert re.search(
            r" - WARNING - .*fivetran/payments/charges required_columns_are_not_null FAILED "
            r"\(ERROR, blocking\): id: 12 of 10000 rows null",
            output,
        ), output[-3000:]
        summary = output[output.index("tollgate run summary: FAILED") :]
        assert "Failed checks (2):" in summary
        assert (
            "fivetran/payments/charges required_columns_are_not_null (ERROR, blocking; owner team:payments-data)\n    id: 12 of 10000 rows null"
            in summary
        )
        # Both connectors' 6 publishes (each connector is checked in one step), 2 LookML models,
        # 3 refreshes.
        assert "Held back by checks (11):" in summary
        assert (
            "published/payments/customers by fivetran/payments/charges "
            "required_columns_are_not_null" in summary
        )
        assert (
            "looker/revenue_by_customer by fivetran/payments/charges required_columns_are_not_null"
            in summary
        )
        assert "Exit code 1: a blocking (ERROR) check failed and 11 asset(s)" in summary
        assert tags["tollgate/result"] == "failed" and tags["tollgate/held_back"] == "11"
        # Selecting only the Looker refreshes afterwards does not open the gate.
        again = materialize(home, defects, dagster_cli("key:looker/*"))
        assert again.returncode != 0, again.stdout[-3000:]
        assert "Refusing to refresh looker/payments_etl" in again.stdout
        assert "fivetran/payments/charges required_columns_are_not_null failed" in again.stdout
        assert materialized(home, LOOKER_KEYS) == set()
        assert not [r for r in looker_api.requests_seen() if r["method"] == "PATCH"]
        assert "Failed step looker__payments_etl: " in again.stdout  # its summary names the refusal
    else:
        assert run.returncode == 0, output[-3000:]
        assert materialized(home, LOOKER_KEYS) == LOOKER_KEYS
        assert "tollgate run summary: PASSED" in output and "Exit code 0:" in output
        assert tags["tollgate/result"] == "passed"


def test_a_bad_selection_is_refused_with_the_fix(capsys):
    assert selection.main(["owner:team:payments-data"]) == 2
    assert 'quote them: owner:"team:payments-data"' in capsys.readouterr().err
    assert selection.main(["fivetran/payments/*"]) == 2
    assert "write key:fivetran/payments/*" in capsys.readouterr().err
    assert selection.main(['owner:"team:payments-data"+']) == 0


def test_make_run_checks_a_selection_only_when_one_is_given():
    """Everything (the default) needs no check; skipping it spares `make run` a Python start."""

    def commands(*args: str) -> str:
        done = subprocess.run(
            ["make", "-n", "-o", "install", "run", *args],  # -o: the install is not asked for
            cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        return done.stdout

    assert "pipeline.selection" not in commands()
    assert "dg launch --job tollgate_gate" in commands()
    chosen = commands('SELECT=key:"fivetran/payments/*"')
    assert "-m pipeline.selection 'key:\"fivetran/payments/*\"'" in chosen
    assert "dg launch --assets 'key:\"fivetran/payments/*\"'" in chosen


def test_overlapping_cli_runs_share_the_warehouse_safely(tmp_path, monkeypatch):
    """Two gate runs at once on one instance (a schedule overlapping a manual run), one from each
    CLI, one with a process per step and one in one process: each publishes what it audited and
    neither refuses the other's results."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.chdir(home)
    # An instance that already exists, as a schedule's is: two processes creating one SQLite
    # storage at the same moment race in Dagster's own schema migration, not in tollgate.
    DagsterInstance.from_config(str(home)).dispose()
    runs = [start(home, cli=dagster_cli() + MULTIPROCESS), start(home, cli=DG_CLI)]
    results = [finish(run) for run in runs]
    for code, output in results:
        assert code == 0, output[-3000:]
        assert "Could not set lock" not in output  # DuckDB's error when two processes collide
    assert materialized(home, LOOKER_KEYS) == LOOKER_KEYS
    with DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_runs()) == 2
