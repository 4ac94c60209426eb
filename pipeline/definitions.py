"""Assemble the tollgate Definitions: Fivetran assets, contract checks, Looker refreshes."""

from dagster import (
    AssetChecksDefinition,
    AssetKey,
    AssetsDefinition,
    Definitions,
    get_dagster_logger,
)
from dagster_fivetran import build_fivetran_assets_definitions, build_fivetran_polling_sensor
from dagster_fivetran.translator import FivetranMetadataSet

from pipeline import environment
from pipeline.automation import automation_sensor, gate_job, gate_schedule
from pipeline.checks.factory import build_table_checks, fivetran_key
from pipeline.contract import Contract, ContractError, load_contracts
from pipeline.fivetran import ContractTranslator
from pipeline.looker import Refresh, build_refresh_asset, load_refreshes
from pipeline.looker_checks import build_looker_checks


def build_definitions() -> Definitions:
    """Read contracts and the Fivetran workspace, and build every definition from them."""
    contracts = load_contracts()
    workspace = environment.fivetran_workspace()
    translator = ContractTranslator(contracts)
    fivetran_assets = build_fivetran_assets_definitions(
        workspace=workspace, dagster_fivetran_translator=translator
    )
    # Syncs Fivetran ran on its own schedule become materializations; the automation
    # conditions then check those tables and refresh Looker where the checks pass.
    syncs_sensor = build_fivetran_polling_sensor(
        workspace=workspace, dagster_fivetran_translator=translator, name="fivetran_syncs"
    )
    refreshes = gated_refreshes(load_refreshes(), fivetran_assets, contracts)
    return Definitions(
        assets=[*fivetran_assets, *(build_refresh_asset(r) for r in refreshes)],
        asset_checks=[
            *contract_checks(contracts, fivetran_assets),
            *(build_looker_checks(r, contracts) for r in refreshes),
        ],
        jobs=[gate_job],
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


def gated_refreshes(
    refreshes: list[Refresh],
    fivetran_assets: list[AssetsDefinition],
    contracts: dict[str, Contract],
) -> list[Refresh]:
    """Refreshes whose every table Fivetran syncs under a contract; others would be ungated."""
    synced = synced_keys(fivetran_assets)
    contracted = {
        fivetran_key(c.connector, t) for c in contracts.values() for t in c.tables
    } & synced
    gated = []
    for refresh in refreshes:
        ungated = [t for t in refresh.reads if fivetran_key(*t.split(".", 1)) not in contracted]
        if ungated:
            get_dagster_logger().warning(
                f"looker/{refresh.name} is not loaded: it reads {', '.join(ungated)}, which no "
                "Fivetran connector syncs under a contract, so no check could gate it."
            )
        else:
            gated.append(refresh)
    return gated


def synced_keys(fivetran_assets: list[AssetsDefinition]) -> set[AssetKey]:
    return {spec.key for assets_def in fivetran_assets for spec in assets_def.specs}
