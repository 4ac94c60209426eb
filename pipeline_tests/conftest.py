"""Every test gets its own data folder, no real credentials, and no sandbox left running."""

import pytest

from pipeline.sandbox import server

REAL_SERVICE_VARIABLES = (
    "FIVETRAN_API_KEY",
    "FIVETRAN_API_SECRET",
    "FIVETRAN_ACCOUNT_ID",
    "SNOWFLAKE_ACCOUNT",
    "LOOKERSDK_BASE_URL",
    "TOLLGATE_SANDBOX_DEFECTS",
    "TOLLGATE_SANDBOX_CSV_DIR",
    "TOLLGATE_CONTRACTS_DIR",
    "TOLLGATE_LOOKML_DIR",
)


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TOLLGATE_DATA_DIR", str(tmp_path / "data"))
    for name in REAL_SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield tmp_path / "data"
    server.stop_all()
