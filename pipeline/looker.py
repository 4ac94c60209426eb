"""Looker refresh assets: datagroup resets and PDT rebuilds, downstream of the tables they read."""

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AssetCheckKey,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    ResourceDependency,
    asset,
)
from dagster_looker import LookerResource
from looker_sdk.error import SDKError
from looker_sdk.sdk.api40.methods import Looker40SDK
from looker_sdk.sdk.api40.models import WriteDatagroup

from pipeline import gate, publish
from pipeline.automation import REFRESH_CONDITION
from pipeline.checks.factory import fivetran_key
from pipeline.contract import TableContract
from pipeline.looker_config import load_config
from pipeline.looker_lineage import lookml_dir, refreshes_file, resolve_refresh
from pipeline.looker_sql import BRANCH_VARIABLE, branch
from pipeline.lookml_project import LOOKML_DIGEST, Project, project_digest
from pipeline.warehouse import Warehouse


@dataclass(frozen=True)
class Refresh:
    name: str
    description: str
    reads: tuple[str, ...]
    datagroup: tuple[str, str] | None = None  # (model, datagroup name)
    pdt: tuple[str, str] | None = None  # (model, view)
    views: tuple[str, ...] = ()  # LookML views whose data this refresh puts in front of users
    deps: tuple[AssetKey, ...] = ()  # the published tables it reads (set by definitions)
    problems: tuple[str, ...] = ()  # why it must not run: unresolved lineage, ungated reads
    default_schema: str | None = None  # the model connection's, for unqualified table names
    connection: str = ""  # the model's Looker connection


def refresh_model(refresh: Refresh) -> str:
    """The LookML model a refresh belongs to."""
    return (refresh.datagroup or refresh.pdt or ("", ""))[0]


FIRST_POLL_SECONDS = 0.1  # then doubling: a quick build is seen at once, a long one every interval


class RefreshConfig(Config):
    poll_interval_seconds: float = 1.0  # the longest wait between two PDT status checks
    timeout_seconds: float = 1800.0


class SandboxLookerResource(LookerResource):
    """dagster-looker's LookerResource pointed at the local Looker sandbox, which runs its SQL
    in the pipeline's warehouse."""

    warehouse: ResourceDependency[Warehouse]

    def get_sdk(self) -> Looker40SDK:
        from pipeline.sandbox.looker_api import sandbox_url

        real = LookerResource(
            base_url=sandbox_url(self.warehouse),
            client_id=self.client_id,
            client_secret=self.client_secret,
        )
        return real.get_sdk()


def load_refreshes(path: Path | None = None, project: Path | None = None) -> list[Refresh]:
    """Refreshes from the config; the tables each reads come from LookML, plus any listed `reads`."""
    path = path or refreshes_file()
    config = load_config(path)
    default_schemas = {
        name: c.default_schema for name, c in config.connections.items() if c and c.default_schema
    }
    lookml = Project(project or lookml_dir())  # read once for every refresh
    refreshes = []
    for entry in config.refreshes:
        datagroup = (entry.datagroup.model, entry.datagroup.name) if entry.datagroup else None
        pdt = (entry.pdt.model, entry.pdt.view) if entry.pdt else None
        try:
            lineage = resolve_refresh(lookml, datagroup, pdt, default_schemas)
        except (LookupError, FileNotFoundError) as error:
            raise ValueError(f"{path}: refresh {entry.name!r}: {error}") from None
        connection = config.connection(lineage.connection)
        if connection and not connection.warehouse:
            raise ValueError(
                f"{path}: refresh {entry.name!r}: its model's connection "
                f"{lineage.connection!r} is declared `warehouse: false`, yet tollgate gates and "
                "refreshes it: declare it `warehouse: true`, or remove the refresh"
            )
        # `reads` adds tables the LookML does not show; it never removes one LookML reads.
        derived = {f"{schema}.{table}" for schema, table in lineage.tables}
        reads = sorted(derived | {t.lower() for t in entry.reads})
        if not reads and not lineage.problems:
            raise ValueError(f"{path}: refresh {entry.name!r} reads no warehouse table")
        refreshes.append(
            Refresh(
                name=entry.name,
                description=entry.description,
                reads=tuple(reads),
                datagroup=datagroup,
                pdt=pdt,
                views=tuple(sorted(lineage.views)),
                problems=lineage.problems,
                default_schema=lineage.default_schema,
                connection=lineage.connection,
            )
        )
    return refreshes


def build_refresh_asset(
    refresh: Refresh,
    published: Mapping[AssetKey, TableContract],
    blocking: Sequence[AssetCheckKey],
) -> AssetsDefinition:
    """The refresh asset; it verifies the gate itself before any call that refreshes Looker."""

    @asset(
        key=["looker", refresh.name],
        # lookml/<model> holds the Looker-side checks: they run, and can withhold this, first.
        deps=[AssetKey(["lookml", refresh_model(refresh)]), *refresh.deps],
        group_name="looker",
        kinds={"looker"},
        description=refresh.description,
        # Owned by whoever owns the tables it reads: they are who a held-back refresh waits on.
        owners=sorted({published[key].owner for key in refresh.deps if key in published}),
        automation_condition=REFRESH_CONDITION,
    )
    def looker_refresh(
        context: AssetExecutionContext,
        config: RefreshConfig,
        looker: LookerResource,
        warehouse: Warehouse,
    ):
        if branch():
            raise Failure(
                f"{BRANCH_VARIABLE}={branch()} validates a LookML branch; refreshes run only "
                f"on production LookML, so looker/{refresh.name} refuses to run"
            )
        versions = verify_gate(context, refresh, published, blocking, warehouse)
        metadata: dict[str, str] = {"published_versions": ", ".join(versions)}
        try:
            sdk = looker.get_sdk()
            if refresh.datagroup:
                metadata["datagroup"] = reset_datagroup(sdk, *refresh.datagroup)
                context.log.info(
                    f"Reset Looker datagroup {refresh.datagroup[0]}::{refresh.datagroup[1]}"
                )
            if refresh.pdt:
                metadata.update(build_pdt(context, sdk, *refresh.pdt, config))
        except SDKError as error:
            detail = " ".join(str(getattr(error, "message", "") or error).split())
            raise Failure(f"Looker refused refresh {refresh.name}: {detail}") from None
        return MaterializeResult(metadata=metadata)

    return looker_refresh


def verify_gate(
    context: AssetExecutionContext,
    refresh: Refresh,
    published: Mapping[AssetKey, TableContract],
    blocking: Sequence[AssetCheckKey],
    warehouse: Warehouse,
) -> list[str]:
    """Refuse unless every blocking check upstream passed and each table read is published."""
    verdicts = gate.verdicts(context.instance, blocking, context.run.run_id)
    problems = list(refresh.problems) + gate.not_passed(verdicts)
    problems += lookml_judged_elsewhere(
        {c: r for c, r in verdicts.items() if c.asset_key.path[0] == "lookml"}
    )
    versions = []
    tables = [published[key] for key in refresh.deps]
    with warehouse.session():  # one connection, one ledger query for every table
        ledgers = publish.ledgers(warehouse, tables)
    for table in tables:
        version = ledgers[table.id].live
        where = f"{table.published_schema}.{table.name}"
        if version is None:
            problems.append(f"{where} has never been published (owner: {table.owner})")
            continue
        versions.append(f"{where}@{version}")
        source = fivetran_key(table.connector, table.name)
        problems += gate.passed_on(
            context.instance, [c for c in blocking if c.asset_key == source], version
        )
    if problems:
        raise gate.refuse(f"refresh looker/{refresh.name}", problems)
    return versions


def lookml_judged_elsewhere(
    verdicts: Mapping[AssetCheckKey, gate.AssetCheckExecutionRecord | None],
) -> list[str]:
    """Looker checks whose pass was on a branch, or on LookML that has changed since."""
    digest, found = project_digest(lookml_dir()), []
    for check, record in verdicts.items():
        if record is None or record.status != gate.PASSED:
            continue  # not_passed names it already
        judged = gate.record_metadata(record)
        branch_seen = gate.metadata_value(judged.get("branch"))
        if branch_seen != "production":
            found.append(f"{gate.check_name(check)} passed on LookML branch {branch_seen!r}")
        elif gate.metadata_value(judged.get(LOOKML_DIGEST)) != digest:
            found.append(
                f"{gate.check_name(check)} passed on other LookML: the project changed since; "
                f"materialize {check.asset_key.to_user_string()} with its checks again"
            )
    return found


def reset_datagroup(sdk: Looker40SDK, model: str, name: str) -> str:
    """Mark the datagroup stale now, so Looker drops its cache and rebuilds dependent PDTs."""
    match = [d for d in sdk.all_datagroups() if d.model_name == model and d.name == name]
    if not match:
        raise Failure(f"Looker has no datagroup {name!r} in model {model!r}")
    now = int(datetime.now(UTC).timestamp())
    sdk.update_datagroup(match[0].id, WriteDatagroup(stale_before=now, triggered_at=now))
    return f"{model}::{name} stale_before={now}"


def build_pdt(
    context: AssetExecutionContext, sdk: Looker40SDK, model: str, view: str, config: RefreshConfig
) -> dict[str, str]:
    """Start a PDT rebuild and poll it until Looker reports it complete, failed or timed out."""
    started = sdk.start_pdt_build(model, view, force_rebuild="true", source="tollgate")
    deadline = time.monotonic() + config.timeout_seconds
    wait = min(FIRST_POLL_SECONDS, config.poll_interval_seconds)
    while True:
        status = sdk.check_pdt_build(started.materialization_id)
        text = status.resp_text or ""
        context.log.info(f"PDT {model}.{view} ({started.materialization_id}): {text}")
        state, message = pdt_state(text)
        if state == "complete":
            return {
                "pdt_status": state,
                "pdt_message": message,
                "pdt_build": str(started.materialization_id),
            }
        if state == "failed":
            raise Failure(f"Looker PDT {model}.{view} failed: {message}")
        if time.monotonic() > deadline:
            raise Failure(
                f"Looker PDT {model}.{view} not built after {config.timeout_seconds:.0f}s: {text}"
            )
        time.sleep(wait)
        wait = min(wait * 2, config.poll_interval_seconds)


def pdt_state(resp_text: str) -> tuple[str, str]:
    """Looker's build status (JSON with `status`) as running, complete or failed, and its message."""
    try:
        body = json.loads(resp_text)
        status, message = str(body.get("status", "")).lower(), str(body.get("message") or resp_text)
    except (ValueError, AttributeError):  # older Lookers answer in plain text
        status, message = resp_text.lower(), resp_text
    if status in ("complete", "success", "done") or status.startswith("complete"):
        return "complete", message
    if status in ("error", "killed", "unknown", "failed") or "fail" in status or "error" in status:
        return "failed", message
    return "running", message
