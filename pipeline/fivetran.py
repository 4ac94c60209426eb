"""Fivetran through dagster-fivetran: keys fivetran/<connector>/<table>, owners from contracts."""

from collections.abc import Mapping

from dagster import AssetSpec
from dagster_fivetran import (
    DagsterFivetranTranslator,
    FivetranConnectorTableProps,
    FivetranWorkspace,
)
from dagster_fivetran.resources import FivetranClient

from pipeline.checks.factory import fivetran_key
from pipeline.contract import Contract


class ContractTranslator(DagsterFivetranTranslator):
    """Default dagster-fivetran specs, re-keyed per connector and annotated from the contract."""

    def __init__(self, contracts: Mapping[str, Contract]):
        self.contracts = contracts

    def get_asset_spec(self, props: FivetranConnectorTableProps) -> AssetSpec:
        spec = super().get_asset_spec(props)
        table = props.table.split(".")[-1]
        contract = self.contracts.get(props.connector_name)
        table_contract = contract.tables.get(table) if contract else None
        if table_contract is None:
            return spec.replace_attributes(
                key=fivetran_key(props.connector_name, table),
                group_name=props.connector_name,
                description=f"{props.connector_name}.{table}, landed by Fivetran; no contract yet.",
            )
        return spec.replace_attributes(
            key=fivetran_key(props.connector_name, table),
            group_name=props.connector_name,
            owners=[table_contract.owner],
            description=table_contract.description or f"{props.connector_name}.{table}",
            tags={"contract": props.connector_name},
        )


class SandboxFivetranClient(FivetranClient):
    """The real dagster-fivetran client, pointed at the local sandbox API."""

    @property
    def api_base_url(self) -> str:
        from pipeline.sandbox.fivetran_api import sandbox_url

        return f"{sandbox_url()}/v1"


class SandboxFivetranWorkspace(FivetranWorkspace):
    """A FivetranWorkspace whose client talks to the sandbox on 127.0.0.1."""

    def get_client(self) -> FivetranClient:
        return SandboxFivetranClient(
            api_key=self.api_key,
            api_secret=self.api_secret,
            request_max_retries=self.request_max_retries,
            request_retry_delay=self.request_retry_delay,
            request_backoff_factor=self.request_backoff_factor,
            disable_schedule_on_trigger=self.disable_schedule_on_trigger,
            retry_on_reschedule=self.retry_on_reschedule,
        )
