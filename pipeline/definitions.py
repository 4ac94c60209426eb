"""Assemble the tollgate Definitions: Fivetran assets, contract checks, publish, Looker refreshes."""

from dataclasses import replace

from dagster import (
    AssetChecksDefinition,
    AssetKey,
    AssetsDefinition,
    Definitions,
    get_dagster_logger,
)
from dagster_fivetran import build_fivetran_polling_sensor
from dagster_fivetran.translator import FivetranMetadataSet

from pipeline import environment
from pipeline.automation import automation_sensor, gate_job, gate_schedule
from pipeline.checks.factory import build_table_checks, fivetran_key
from pipeline.contract import Contract, ContractError, TableContract, load_contracts
from pipeline.executor import gate_executor
from pipeline.fivetran import ContractTranslator, build_connector_assets
from pipeline.gate import GateIndex
from pipeline.looker import Refresh, build_refresh_asset, load_refreshes
from pipeline.looker_checks import build_looker_checks
from pipeline.published import build_publish_asset, published_key


def build_definitions() -> Definitions:
    """Read contracts and the Fivetran workspace, and build every definition from them."""
    contracts = load_contracts()
    workspace = environment.fivetran_workspace()
    translator = ContractTranslator(contracts)
    fivetran_assets = build_connector_assets(workspace, translator)
    # Syncs Fivetran ran on its own schedule become materializations; the automation
    # conditions then check those tables and refresh Looker where the checks pass.
    syncs_sensor = build_fivetran_polling_sensor(
        workspace=workspace, dagster_fivetran_translator=translator, name="fivetran_syncs"
    )
    synced = synced_keys(fivetran_assets)
    published = {
        published_key(c.connector, t.name): t
        for c in contracts.values()
        for t in c.tables.values()
        if fivetran_key(c.connector, t.name) in synced
    }
    refreshes = [wire_refresh(r, contracts, published) for r in load_refreshes()]
    # The exposure check follows LookML to the contract by either schema a view may name.
    by_schema = {c.connector: c for c in contracts.values()} | {
        c.published_schema: c for c in contracts.values()
    }
    checks = contract_checks(contracts, fivetran_assets)
    contract_gate = GateIndex.build(fivetran_assets, checks)
    publish_assets = [
        build_publish_asset(t, contract_gate.blocking.get(fivetran_key(t.connector, t.name), ()))
        for t in published.values()
    ]
    # What each refresh must verify itself: every blocking check upstream of what it reads.
    index = GateIndex.build([*fivetran_assets, *publish_assets], checks)
    return Definitions(
        assets=[
            *fivetran_assets,
            *publish_assets,
            *(
                build_refresh_asset(r, published, index.blocking_upstream(r.deps))
                for r in refreshes
            ),
        ],
        asset_checks=[*checks, *(build_looker_checks(r, by_schema) for r in refreshes)],
        jobs=[gate_job],
        executor=gate_executor,
        schedules=[gate_schedule],
        sensors=[syncs_sensor, automation_sensor],
        resources={
            "fivetran": workspace,
            "warehouse": environment.warehouse(),
            "looker": environment.looker(),
        },
    )


def contract_checks(
    contracts: dict[str, Contract], fivetran_assets: list[AssetsDefinition]
) -> list[AssetChecksDefinition]:
    """Checks for every contracted table the Fivetran workspace syncs."""
    connector_ids = {
        spec.key.path[1]: FivetranMetadataSet.extract(spec.metadata).connector_id
        for assets_def in fivetran_assets
        for spec in assets_def.specs
    }
    synced = synced_keys(fivetran_assets)
    checks = []
    for contract in contracts.values():
        if contract.connector not in connector_ids:
            get_dagster_logger().warning(
                f"{contract.file}: connector {contract.connector!r} is not in the Fivetran "
                "workspace (not set up or never synced); its contract checks are not loaded."
            )
            continue
        for table in contract.tables.values():
            if fivetran_key(contract.connector, table.name) not in synced:
                raise ContractError(
                    contract.file,
                    f"connector {contract.connector!r} does not sync this table",
                    table.name,
                )
            checks.append(build_table_checks(table, connector_ids[contract.connector]))
    return checks


def wire_refresh(
    refresh: Refresh, contracts: dict[str, Contract], published: dict[AssetKey, TableContract]
) -> Refresh:
    """The refresh's deps are the published tables it reads; any other read is a problem."""
    by_schema = {c.published_schema.lower(): c for c in contracts.values()}
    landing = {c.connector.lower(): c for c in contracts.values()}
    deps, problems = [], list(refresh.problems)
    for read in refresh.reads:
        schema, _, name = read.lower().rpartition(".")
        contract = by_schema.get(schema)
        key = published_key(contract.connector, name) if contract else None
        if key in published:
            deps.append(key)
        elif schema in landing:
            problems.append(
                f"LookML reads {read}, Fivetran's landing table: read "
                f"{landing[schema].published_schema}.{name}, the audited version, instead"
            )
        else:
            problems.append(
                f"LookML reads {read}, which no contract publishes (no check could gate it)"
            )
    return replace(refresh, deps=tuple(dict.fromkeys(deps)), problems=tuple(problems))


def synced_keys(fivetran_assets: list[AssetsDefinition]) -> set[AssetKey]:
    return {spec.key for assets_def in fivetran_assets for spec in assets_def.specs}
