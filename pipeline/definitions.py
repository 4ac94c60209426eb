"""Assemble the tollgate Definitions: Fivetran assets, contract checks, publish, Looker refreshes."""

from dataclasses import replace

from dagster import (
    AssetChecksDefinition,
    AssetKey,
    AssetsDefinition,
    Definitions,
)
from dagster_fivetran import build_fivetran_polling_sensor
from dagster_fivetran.translator import FivetranMetadataSet

from pipeline import environment
from pipeline.automation import automation_sensor, gate_job, gate_schedule
from pipeline.checks.factory import build_connector_checks, fivetran_key
from pipeline.contract import Contract, ContractError, load_contracts
from pipeline.fivetran import ContractTranslator, build_connector_assets
from pipeline.gate import GateIndex
from pipeline.load_log import info_once, warn_once
from pipeline.looker import Refresh, build_refresh_asset, load_refreshes, refresh_model
from pipeline.lookml_model import (
    build_lookml_asset,
    check_severities,
    lookml_key,
    lookml_models,
    served_alongside,
)
from pipeline.lookml_rules import Readable, readable_tables, unpublished
from pipeline.published import build_publish_assets, publish_groups, published_key
from pipeline.run_end import gate_executor


def build_definitions() -> Definitions:
    """Read contracts and the Fivetran workspace, and build every definition from them."""
    setup = environment.setup()
    # Loud while anything is a sandbox: generated data must never pass for the real thing.
    (info_once if setup.real == set(environment.CREDENTIALS) else warn_once)(
        f"tollgate loaded: {setup.describe()}"
    )
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
    readable = readable_tables(published)
    refreshes = [wire_refresh(r, contracts, readable) for r in load_refreshes()]
    checks = contract_checks(contracts, fivetran_assets)
    contract_gate = GateIndex.build(fivetran_assets, checks)
    publish_assets = [
        build_publish_assets(tables, contract_gate.blocking, published)
        for tables in publish_groups(published, contract_gate.blocking)
    ]
    # One lookml/<model> per model, between the published tables and the model's refreshes (and
    # one per model on the same connection that no refresh covers); its Looker checks run with it.
    severities = check_severities()
    models = [
        replace(m, owners=tuple(sorted({published[k].owner for k in m.deps})))
        for m in [*lookml_models(refreshes), *served_alongside(refreshes, readable)]
    ]
    lookml_assets = [build_lookml_asset(m, contracts, readable, severities) for m in models]
    # What each refresh must verify itself: every blocking check upstream of what it reads,
    # its model's Looker checks included.
    index = GateIndex.build([*fivetran_assets, *publish_assets, *lookml_assets], checks)
    warehouse = environment.warehouse()
    return Definitions(
        assets=[
            *fivetran_assets,
            *publish_assets,
            *lookml_assets,
            *(
                build_refresh_asset(
                    r, published, index.blocking_upstream([lookml_key(refresh_model(r)), *r.deps])
                )
                for r in refreshes
            ),
        ],
        asset_checks=checks,
        jobs=[gate_job],
        schedules=[gate_schedule],
        sensors=[syncs_sensor, automation_sensor],
        executor=gate_executor,
        resources={
            "fivetran": workspace,
            "warehouse": warehouse,
            "looker": environment.looker(warehouse),
        },
    )


def contract_checks(
    contracts: dict[str, Contract], fivetran_assets: list[AssetsDefinition]
) -> list[AssetChecksDefinition]:
    """Checks for every contracted table the Fivetran workspace syncs."""
    # Each Fivetran multi-asset syncs one connector: its first spec names it.
    firsts = [next(iter(assets_def.specs)) for assets_def in fivetran_assets]
    connector_ids = {
        spec.key.path[1]: FivetranMetadataSet.extract(spec.metadata).connector_id for spec in firsts
    }
    synced = synced_keys(fivetran_assets)
    checks = []
    for contract in contracts.values():
        if contract.connector not in connector_ids:
            warn_once(
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
        if contract.tables:
            tables = list(contract.tables.values())
            checks.append(build_connector_checks(tables, connector_ids[contract.connector]))
    return checks


def wire_refresh(refresh: Refresh, contracts: dict[str, Contract], readable: Readable) -> Refresh:
    """The refresh's deps are the published tables it reads; any other read is a problem."""
    deps, problems = [], list(refresh.problems)
    for read in refresh.reads:
        schema, _, name = read.lower().rpartition(".")
        if (schema, name) in readable:
            deps.append(readable[schema, name])
        else:
            problems.append(f"LookML {unpublished(read, contracts, readable)}")
    return replace(refresh, deps=tuple(dict.fromkeys(deps)), problems=tuple(problems))


def synced_keys(fivetran_assets: list[AssetsDefinition]) -> set[AssetKey]:
    return {spec.key for assets_def in fivetran_assets for spec in assets_def.specs}
