"""Read Fivetran's column config (enabled, hashed) for a connector's destination tables."""

from collections.abc import Mapping
from typing import Any

from dagster_fivetran import FivetranWorkspace


class ConnectorConfig:
    """One connector's column config; its schema config is read once, on first use."""

    def __init__(self, fivetran: FivetranWorkspace, connector_id: str):
        self.client = fivetran.get_client()
        self.connector_id = connector_id
        self._schemas: Mapping[str, Any] | None = None

    def columns(self, table: str) -> dict[str, Mapping[str, Any]]:
        """Destination column name -> {enabled, hashed, ...}; LookupError when Fivetran lacks the table."""
        if self._schemas is None:  # a failed read is not kept: the next table asks again
            config = self.client.get_schema_config_for_connector(self.connector_id)
            self._schemas = config.get("schemas") or {}
        for schema_name, schema in self._schemas.items():
            for table_name, entry in (schema.get("tables") or {}).items():
                if entry.get("name_in_destination", table_name) != table:
                    continue
                columns = entry.get("columns")
                if not columns:  # the schema listing may omit columns; the table endpoint has them
                    columns = self.client.get_columns_config_for_table(
                        self.connector_id, schema_name, table_name
                    )
                    columns = columns.get("columns", columns)
                return {col.get("name_in_destination", name): col for name, col in columns.items()}
        raise LookupError(
            f"Fivetran connector {self.connector_id} does not sync a table named {table}"
        )
