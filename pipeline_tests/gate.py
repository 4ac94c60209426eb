"""Helpers for tests that run the whole gate in-process."""

import shutil
import textwrap
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult

from pipeline.contract import CONTRACTS_DIR
from pipeline.definitions import build_definitions

TABLES = {
    "payments": ("customers", "charges", "invoices"),
    "crm": ("companies", "contacts", "deals"),
}
FIVETRAN_KEYS = {AssetKey(["fivetran", c, t]) for c, tables in TABLES.items() for t in tables}
PUBLISHED_KEYS = {AssetKey(["published", c, t]) for c, tables in TABLES.items() for t in tables}
LOOKER_KEYS = {
    AssetKey(["looker", "payments_etl"]),
    AssetKey(["looker", "revenue_by_customer"]),
    AssetKey(["looker", "crm_etl"]),
}
LOOKML_KEYS = {AssetKey(["lookml", "payments"]), AssetKey(["lookml", "crm"])}
# The ODCS header of the contract tests write for a connector `shop`; its schema follows.
SHOP_HEADER = (
    "apiVersion: v3.0.2\nkind: DataContract\nid: shop\nname: shop\nversion: 1.0.0\nstatus: active\n"
)


def run_gate(
    run_config: dict | None = None, instance: DagsterInstance | None = None
) -> ExecuteInProcessResult:
    """Build the definitions from the current environment and materialize everything."""
    defs = build_definitions()
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        run_config=run_config,
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def materialized(result: ExecuteInProcessResult) -> set[AssetKey]:
    return {event.asset_key for event in result.get_asset_materialization_events()}


def failed_checks(result: ExecuteInProcessResult) -> dict[tuple[str, ...], str]:
    """(connector, table, check) -> description for every failed check evaluation."""
    return {
        (*evaluation.asset_key.path[1:], evaluation.check_name): evaluation.description or ""
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    }


def replay_connector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, contract: str
) -> Path:
    """A CSV replay connector `name` beside the shipped ones, with its contract; returns the
    folder its CSVs go in."""
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for shipped in CONTRACTS_DIR.glob("*.yaml"):
        shutil.copy(shipped, contracts)
    (contracts / f"{name}.yaml").write_text(textwrap.dedent(contract))
    folder = tmp_path / "replay" / name
    folder.mkdir(parents=True)
    monkeypatch.setenv("TOLLGATE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("TOLLGATE_SANDBOX_CSV_DIR", str(folder.parent))
    return folder
