"""The one place environments are chosen: credentials in the environment mean real services.

Called when definitions are built, never at import. Secrets go in as dagster.EnvVar, so their
values are read only when a resource is initialised and never appear in definitions or logs.
"""

import os

from dagster import EnvVar
from dagster_fivetran import FivetranWorkspace
from dagster_looker import LookerResource

from pipeline.fivetran import GateFivetranWorkspace, SandboxFivetranWorkspace
from pipeline.looker import SandboxLookerResource
from pipeline.settings import duckdb_path
from pipeline.warehouse import DuckDBWarehouse, Warehouse

SANDBOX_SECRET = "sandbox"  # not a secret: the local sandboxes accept any credentials


def uses_real_fivetran() -> bool:
    return bool(os.environ.get("FIVETRAN_API_KEY"))


def fivetran_workspace() -> FivetranWorkspace:
    if uses_real_fivetran():
        return GateFivetranWorkspace(
            account_id=EnvVar("FIVETRAN_ACCOUNT_ID")
            if os.environ.get("FIVETRAN_ACCOUNT_ID")
            else "default",
            api_key=EnvVar("FIVETRAN_API_KEY"),
            api_secret=EnvVar("FIVETRAN_API_SECRET"),
        )
    return SandboxFivetranWorkspace(
        account_id="sandbox",
        api_key=SANDBOX_SECRET,
        api_secret=SANDBOX_SECRET,
        request_retry_delay=0.2,
    )


def warehouse() -> Warehouse:
    if not os.environ.get("SNOWFLAKE_ACCOUNT"):
        return DuckDBWarehouse(path=str(duckdb_path()))
    from dagster_snowflake import SnowflakeResource

    from pipeline.warehouse.snowflake import SnowflakeWarehouse

    optional = {
        key: EnvVar(f"SNOWFLAKE_{key.upper()}")
        for key in ("password", "private_key", "role", "warehouse")
        if os.environ.get(f"SNOWFLAKE_{key.upper()}")
    }
    return SnowflakeWarehouse(
        snowflake=SnowflakeResource(
            account=EnvVar("SNOWFLAKE_ACCOUNT"),
            user=EnvVar("SNOWFLAKE_USER"),
            database=EnvVar("SNOWFLAKE_DATABASE"),
            **optional,
        )
    )


def looker() -> LookerResource:
    if os.environ.get("LOOKERSDK_BASE_URL"):
        return LookerResource(
            base_url=EnvVar("LOOKERSDK_BASE_URL"),
            client_id=EnvVar("LOOKERSDK_CLIENT_ID"),
            client_secret=EnvVar("LOOKERSDK_CLIENT_SECRET"),
        )
    return SandboxLookerResource(
        base_url="sandbox", client_id=SANDBOX_SECRET, client_secret=SANDBOX_SECRET
    )
