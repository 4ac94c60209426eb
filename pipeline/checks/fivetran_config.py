"""Read Fivetran's column config (enabled, hashed) for one destination table."""

from collections.abc import Mapping
from typing import Any

from dagster_fivetran import FivetranWorkspace


def fetch_column_config(
    fivetran: FivetranWorkspace, connector_id: str, table: str
) -> dict[str, Mapping[str, Any]]:
    """Destination column name -> {enabled, hashed, ...}; LookupError when Fivetran lacks the table."""
    client = fivetran.get_client()
    config = client.get_schema_config_for_connector(connector_id)
    for schema_name, schema in (config.get("schemas") or {}).items():
        for table_name, entry in (schema.get("tables") or {}).items():
            if entry.get("name_in_destination", table_name) != table:
                continue
            columns = entry.get("columns")
            if not columns:  # the schema listing may omit columns; the table endpoint has them all
                columns = client.get_columns_config_for_table(connector_id, schema_name, table_name)
                columns = columns.get("columns", columns)
            return {col.get("name_in_destination", name): col for name, col in columns.items()}
    raise LookupError(f"Fivetran connector {connector_id} does not sync a table named {table}")
