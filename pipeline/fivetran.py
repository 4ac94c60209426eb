"""Fivetran through dagster-fivetran: keys fivetran/<connector>/<table>, owners from contracts."""

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    multi_asset,
)
from dagster_fivetran import (
    DagsterFivetranTranslator,
    FivetranConnectorTableProps,
    FivetranMetadataSet,
    FivetranSyncConfig,
    FivetranWorkspace,
)
from dagster_fivetran.resources import FivetranClient
from dagster_fivetran.translator import FivetranConnector
from dagster_fivetran.types import FivetranOutput
from dagster_fivetran.utils import clean_name

from pipeline.checks.factory import fivetran_key
from pipeline.checks.freshness import SYNC_COMPLETED_AT
from pipeline.contract import Contract, contracts_dir
from pipeline.settings import REPO_ROOT
from pipeline.table_metadata import (
    COLUMN_SCHEMA,
    column_schema,
    freshness_policy,
    row_count_metadata,
)
from pipeline.warehouse import Warehouse


class ContractTranslator(DagsterFivetranTranslator):
    """Default dagster-fivetran specs, re-keyed per connector and annotated from the contract."""

    def __init__(self, contracts: Mapping[str, Contract]):
        self.contracts = contracts
        folder = contracts_dir().resolve()
        self.folder = str(
            folder.relative_to(REPO_ROOT) if folder.is_relative_to(REPO_ROOT) else folder
        )

    # dagster-fivetran keeps the translator in every spec's metadata and reads it back when it
    # syncs; as a path it shows in the UI as the contracts it translates from, instead of
    # "[ContractTranslator] (unserializable)". Dagster asks once per spec: the folder is known.
    def __fspath__(self) -> str:
        return self.folder

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
            freshness_policy=freshness_policy(table_contract),
            metadata={**spec.metadata, COLUMN_SCHEMA: column_schema(table_contract)},
        )


GROUPS_PAGE_SIZE = 1000  # the most Fivetran's list endpoints return per page


SCHEMA_CONFIG_FETCHES = 8  # schema configs fetched at once while loading the workspace


class GateFivetranClient(FivetranClient):
    """dagster-fivetran's client, reading every page of groups (0.29 reads only the first) and
    fetching a group's schema configs several at a time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._schema_configs: dict[str, Mapping[str, Any]] = {}

    def get_groups(self) -> Mapping[str, Any]:
        """All groups, following `nextCursor` the way the client pages a group's connectors."""
        items: list[Mapping[str, Any]] = []
        cursor = None
        while True:
            # The same request helper list_connectors_for_group uses, so retries stay the library's.
            data = self._make_and_handle_request(
                "GET",
                "groups",
                params={"limit": GROUPS_PAGE_SIZE, **({"cursor": cursor} if cursor else {})},
            )
            items.extend(data["items"])
            cursor = data.get("nextCursor")
            if not cursor:
                return {"items": items}

    # Loading the workspace, dagster-fivetran lists a group's connectors, then asks for each
    # connected one's schema config, one round trip after another: 100 connectors 0.3 s away
    # take 30 s. So listing fetches them all at once, and the one-by-one calls read them back.
    # A fetch that failed here (retries used up, e.g. rate-limited) is asked again one by one.
    def list_connectors_for_group(self, group_id: str) -> Sequence[Mapping[str, Any]]:
        connectors = super().list_connectors_for_group(group_id)
        ids = [
            c["id"] for c in connectors if FivetranConnector.from_connector_details(c).is_connected
        ]
        with ThreadPoolExecutor(SCHEMA_CONFIG_FETCHES, "fivetran-schemas") as pool:
            fetched = zip(ids, pool.map(self._schema_config_or_none, ids), strict=True)
            self._schema_configs.update((i, c) for i, c in fetched if c is not None)
        return connectors

    def _schema_config_or_none(self, connector_id: str) -> Mapping[str, Any] | None:
        try:
            return super().get_schema_config_for_connector(connector_id, False)
        except Failure:
            return None

    def get_schema_config_for_connector(
        self, connector_id: str, raise_on_not_found_error: bool = True
    ) -> Mapping[str, Any]:
        found = self._schema_configs.pop(connector_id, None)
        if found or (found is not None and not raise_on_not_found_error):
            return found
        return super().get_schema_config_for_connector(connector_id, raise_on_not_found_error)


def build_connector_assets(
    workspace: FivetranWorkspace, translator: DagsterFivetranTranslator
) -> list[AssetsDefinition]:
    """One multi-asset per connector syncing its tables, as build_fivetran_assets_definitions
    builds them, but grouping the specs once: 0.29 scans every spec for every connector."""
    by_connector: dict[tuple[str, str], list[AssetSpec]] = {}
    for spec in workspace.load_asset_specs(dagster_fivetran_translator=translator):
        meta = FivetranMetadataSet.extract(spec.metadata)
        by_connector.setdefault((meta.connector_id, meta.connector_name), []).append(spec)
    return [_connector_asset(name, specs) for (_, name), specs in by_connector.items()]


def _connector_asset(connector_name: str, specs: list[AssetSpec]) -> AssetsDefinition:
    @multi_asset(name=f"fivetran_{clean_name(connector_name)}", can_subset=True, specs=specs)
    def _sync(context: AssetExecutionContext, fivetran: FivetranWorkspace):
        yield from fivetran.sync_and_poll(context=context)

    return _sync


class GateFivetranWorkspace(FivetranWorkspace):
    """dagster-fivetran's workspace, failing closed: a sync that lands nothing fails, saying why.

    Its client reads every page of groups, so accounts with more groups than one page hold are
    loaded whole.
    """

    client_class: ClassVar[type[GateFivetranClient]] = GateFivetranClient

    def get_client(self) -> FivetranClient:
        return self.client_class(
            api_key=self.api_key,
            api_secret=self.api_secret,
            request_max_retries=self.request_max_retries,
            request_retry_delay=self.request_retry_delay,
            request_backoff_factor=self.request_backoff_factor,
            disable_schedule_on_trigger=self.disable_schedule_on_trigger,
            retry_on_reschedule=self.retry_on_reschedule,
        )

    def sync_and_poll(
        self, context: AssetExecutionContext, config: FivetranSyncConfig | None = None
    ) -> Iterator[AssetMaterialization | MaterializeResult]:
        from pipeline.environment import open_warehouse

        connector = _connector_id(context)
        landed = set()
        try:
            with open_warehouse() as warehouse:
                # dagster-fivetran calls the API before its first event: once the events are
                # in hand, nothing lands any more and the row counts can share one connection.
                events = list(super().sync_and_poll(context=context, config=config))
                with warehouse.session():
                    readable = [_readable(event, warehouse) for event in events]
            for event in readable:
                landed.add(event.asset_key)
                yield event
        except Failure as failure:
            raise Failure(
                f"{failure.description} Fivetran says: {_reasons(failure)}",
                metadata=failure.metadata,
            ) from None
        except RetryRequested as retry:
            if context.retry_number < retry.max_retries:
                raise
            raise Failure(
                f"Fivetran rescheduled connector {connector} {retry.max_retries + 1} times "
                "(quota or rate limits); giving up until the next run."
            ) from None
        missing = context.selected_asset_keys - landed
        if missing:
            raise Failure(
                f"Fivetran connector {connector} landed nothing for "
                f"{', '.join(sorted(k.to_user_string() for k in missing))}: the connector is "
                "paused or not set up, so the tables still hold the previous sync's data."
            )


def _readable(event: AssetMaterialization | MaterializeResult, warehouse: Warehouse):
    """The sync's materialization without noise, plus the table's row count.

    dagster-fivetran repeats the column names without types (hiding the contract's schema on
    the asset) and the connector's service as storage kind; the completion time becomes a
    timestamp instead of epoch seconds (the polling sensor still reads it back as a number).
    """
    metadata = {
        key: value
        for key, value in (event.metadata or {}).items()
        if key not in (COLUMN_SCHEMA, "dagster/storage_kind")
    }
    raw = metadata.get(SYNC_COMPLETED_AT)
    completed = getattr(raw, "value", raw)
    if isinstance(completed, int | float):
        metadata[SYNC_COMPLETED_AT] = MetadataValue.timestamp(float(completed))
    if len(event.asset_key.path) == 3:  # fivetran/<connector>/<table>
        metadata.update(row_count_metadata(warehouse, *event.asset_key.path[1:]))
    if isinstance(event, MaterializeResult):
        return MaterializeResult(asset_key=event.asset_key, metadata=metadata)
    return AssetMaterialization(asset_key=event.asset_key, metadata=metadata)


def _connector_id(context: AssetExecutionContext) -> str:
    return next(
        FivetranMetadataSet.extract(spec.metadata).connector_id or "?"
        for spec in context.assets_def.specs
    )


def _reasons(failure: Failure) -> str:
    """The messages Fivetran attached to the failed sync (its status tasks), if any."""
    details = failure.metadata.get("connector_details")
    status = (details.value if details else {}).get("status") or {}
    messages = [task.get("message", "") for task in status.get("tasks", []) if task.get("message")]
    return "; ".join(messages) or "no reason given (see the connector's logs in Fivetran)"


SANDBOX_POLL_SECONDS = 0.1  # dagster-fivetran polls every 10 s; a local sync takes about 1 s


class SandboxFivetranClient(GateFivetranClient):
    """The real dagster-fivetran client, pointed at the local sandbox API and polling it often."""

    @property
    def api_base_url(self) -> str:
        from pipeline.sandbox.fivetran_api import sandbox_url

        return f"{sandbox_url()}/v1"

    def sync_and_poll(
        self,
        connector_id: str,
        poll_interval: float = SANDBOX_POLL_SECONDS,
        poll_timeout: float | None = None,
    ) -> FivetranOutput | None:
        return super().sync_and_poll(connector_id, poll_interval, poll_timeout)

    def resync_and_poll(
        self,
        connector_id: str,
        poll_interval: float = SANDBOX_POLL_SECONDS,
        poll_timeout: float | None = None,
        resync_parameters: Mapping[str, Sequence[str]] | None = None,
    ) -> FivetranOutput | None:
        return super().resync_and_poll(connector_id, poll_interval, poll_timeout, resync_parameters)


class SandboxFivetranWorkspace(GateFivetranWorkspace):
    """A FivetranWorkspace whose client talks to the sandbox on 127.0.0.1."""

    client_class: ClassVar[type[GateFivetranClient]] = SandboxFivetranClient
