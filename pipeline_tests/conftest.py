"""Every test gets its own data folder, no real credentials, and no sandbox left running."""

import sys

import fakesnow
import pytest
from dagster_snowflake import SnowflakeResource

from pipeline.environment import CREDENTIALS
from pipeline.sandbox import server
from pipeline.warehouse import DuckDBWarehouse
from pipeline.warehouse.base import KEPT
from pipeline.warehouse.snowflake import SnowflakeWarehouse

# fakesnow.server() replaces itself with its own submodule on first use (`import fakesnow.server`),
# so it is taken here, before any test runs, and put back after each module's server.
START_FAKESNOW = fakesnow.server

REAL_SERVICE_VARIABLES = (
    *(name for names in CREDENTIALS.values() for group in names for name in group),
    "FIVETRAN_ACCOUNT_ID",
    "TOLLGATE_ENV",
    "TOLLGATE_SANDBOX_SERVICES",
    "TOLLGATE_SANDBOX_DEFECTS",
    "TOLLGATE_SANDBOX_CSV_DIR",
    "TOLLGATE_CONTRACTS_DIR",
    "TOLLGATE_LOOKML_DIR",
    "DAGSTER_HOME",  # `make test` sets the repo's: no test writes into its instance
)


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TOLLGATE_DATA_DIR", str(tmp_path / "data"))
    for name in REAL_SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield tmp_path / "data"
    server.stop_all()
    KEPT.close()  # the process's kept DuckDB connection, to this test's file


@pytest.fixture
def duck(tmp_path):
    """An empty DuckDB warehouse."""
    return DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))


@pytest.fixture(scope="module")
def snowflake():
    """Snowflake SQL through dagster-snowflake and the Snowflake connector, served by fakesnow."""
    with START_FAKESNOW() as kwargs:
        resource = SnowflakeResource(
            account="fake",
            user="fake",
            password="fake",
            database="ANALYTICS",
            additional_snowflake_connection_args={
                **{key: kwargs[key] for key in ("host", "port", "protocol", "session_parameters")},
                "network_timeout": 30,  # else the connector retries a fakesnow 500 for minutes
            },
        )
        warehouse = SnowflakeWarehouse(snowflake=resource)
        warehouse.query("CREATE DATABASE IF NOT EXISTS ANALYTICS")
        yield warehouse
    sys.modules.pop("fakesnow.server", None)
    fakesnow.server = START_FAKESNOW
