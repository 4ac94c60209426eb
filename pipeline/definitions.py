"""Assemble the tollgate Definitions: Fivetran assets, contract checks, Looker refreshes."""

from dagster import Definitions, get_dagster_logger
from dagster_fivetran import build_fivetran_assets_definitions

from pipeline import environment
from pipeline.automation import gate_job, gate_schedule
from pipeline.checks.factory import build_table_checks, fivetran_key
from pipeline.contract import ContractError, load_contracts
from pipeline.fivetran import ContractTranslator
from pipeline.looker import build_refresh_asset, load_refreshes


def build_definitions() -> Definitions:
    """Read contracts and the Fivetran workspace, and build every definition from them."""
    contracts = load_contracts()
    workspace = environment.fivetran_workspace()
    fivetran_assets = build_fivetran_assets_definitions(
        workspace=workspace, dagster_fivetran_translator=ContractTranslator(contracts)
    )
    synced = {key for assets_def in fivetran_assets for key in assets_def.keys}
    synced_connectors = {key.path[1] for key in synced}
    checks = []
    for contract in contracts.values():
        if contract.connector not in synced_connectors:
            get_dagster_logger().warning(
                f"{contract.file}: connector {contract.connector!r} is not in the Fivetran workspace "
                "(not set up or never synced); its contract checks are not loaded."
            )
            continue
        for table in contract.tables.values():
            if fivetran_key(contract.connector, table.name) not in synced:
                raise ContractError(
                    contract.file, f"connector {contract.connector!r} does not sync this table", table.name
                )
            if table_checks := build_table_checks(table):
                checks.append(table_checks)
    return Definitions(
        assets=[*fivetran_assets, *(build_refresh_asset(r) for r in load_refreshes())],
        asset_checks=checks,
        jobs=[gate_job],
        schedules=[gate_schedule],
        resources={
            "fivetran": workspace,
            "warehouse": environment.warehouse(),
            "looker": environment.looker(),
        },
    )
