"""Scope: TOLLGATE_ENV — production refuses missing credentials, mixes need an opt-in, and the
Fivetran sandbox never writes generated rows into a warehouse that is not its own."""

import re
from pathlib import Path

import pytest
from dagster import DagsterInstance

from pipeline import environment
from pipeline.definitions import build_definitions
from pipeline.environment import EnvironmentError
from pipeline.sandbox import fivetran_sync
from pipeline.warehouse import TableNotFound

SNOWFLAKE = {
    "SNOWFLAKE_ACCOUNT": "acme-eu1",
    "SNOWFLAKE_USER": "tollgate",
    "SNOWFLAKE_DATABASE": "ANALYTICS",
    "SNOWFLAKE_PASSWORD": "canary-password-9d1e",
}
FIVETRAN = {"FIVETRAN_API_KEY": "canary-key-0a7f", "FIVETRAN_API_SECRET": "canary-secret-51c2"}
LOOKER = {
    "LOOKERSDK_BASE_URL": "https://acme.looker.com",
    "LOOKERSDK_CLIENT_ID": "canary-id-77aa",
    "LOOKERSDK_CLIENT_SECRET": "canary-looker-secret-e3",
}


def set_env(monkeypatch, **variables):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_sandbox_is_the_default_and_says_so():
    setup = environment.setup()
    assert (setup.mode, setup.real) == ("sandbox", frozenset())
    assert setup.tags() == {
        "tollgate/environment": "sandbox",
        "tollgate/fivetran": "the local Fivetran sandbox",
        "tollgate/snowflake": "DuckDB (local sandbox warehouse)",
        "tollgate/looker": "the local Looker sandbox",
    }


def test_production_refuses_to_load_and_names_every_missing_credential(monkeypatch):
    # GitHub Actions passes a missing secret as "": an empty string is missing.
    set_env(monkeypatch, TOLLGATE_ENV="production", **SNOWFLAKE, **FIVETRAN)
    set_env(monkeypatch, FIVETRAN_API_SECRET="", SNOWFLAKE_PASSWORD="", LOOKERSDK_BASE_URL="")
    with pytest.raises(EnvironmentError) as refused:
        build_definitions()
    message = str(refused.value)
    assert "TOLLGATE_ENV=production" in message
    for name in ("FIVETRAN_API_SECRET", "SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY"):
        assert name in message
    for name in ("LOOKERSDK_BASE_URL", "LOOKERSDK_CLIENT_ID", "LOOKERSDK_CLIENT_SECRET"):
        assert name in message
    assert "FIVETRAN_API_KEY" not in message and "SNOWFLAKE_ACCOUNT" not in message


def test_production_with_every_credential_tags_targets_and_no_secret(monkeypatch):
    set_env(monkeypatch, TOLLGATE_ENV="production", **SNOWFLAKE, **FIVETRAN, **LOOKER)
    setup = environment.setup()
    assert setup.real == {"fivetran", "snowflake", "looker"}
    tags = setup.tags()
    assert tags["tollgate/snowflake"] == "Snowflake acme-eu1/ANALYTICS"
    assert tags["tollgate/looker"] == "Looker https://acme.looker.com"
    secrets = [v for k, v in {**SNOWFLAKE, **FIVETRAN, **LOOKER}.items() if "canary" in v]
    assert not [s for s in secrets if s in repr(tags) + setup.describe()]
    monkeypatch.setenv("TOLLGATE_SANDBOX_SERVICES", "looker")
    with pytest.raises(EnvironmentError, match="production uses no sandbox"):
        environment.setup()


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        # Snowflake real, Fivetran and Looker would silently be sandboxes.
        (SNOWFLAKE, ["FIVETRAN_API_KEY", "TOLLGATE_SANDBOX_SERVICES=fivetran,looker"]),
        (
            {**FIVETRAN, **SNOWFLAKE},
            ["LOOKERSDK_CLIENT_SECRET", "TOLLGATE_SANDBOX_SERVICES=looker"],
        ),
        # The checks would read the local DuckDB while real Fivetran lands elsewhere and real
        # Looker reads elsewhere: a refresh of real Looker on checks of other data.
        (
            {**FIVETRAN, **LOOKER, "TOLLGATE_SANDBOX_SERVICES": "snowflake"},
            [
                "names snowflake while fivetran and looker are real",
                "its own destination",
                "its own connection",
                "SNOWFLAKE_* credentials",
            ],
        ),  # fmt: skip
        (
            {**LOOKER, "TOLLGATE_SANDBOX_SERVICES": "snowflake,fivetran"},
            ["names snowflake while looker is real", "never the local DuckDB tollgate publishes"],
        ),
        ({"FIVETRAN_API_KEY": "k"}, ["credentials are incomplete", "FIVETRAN_API_SECRET"]),
        ({"TOLLGATE_SANDBOX_SERVICES": "fivtran"}, ["unknown services ['fivtran']"]),
        ({"TOLLGATE_ENV": "prod"}, ["TOLLGATE_ENV='prod'"]),
        # Before, ignored: the shipped contracts were checked instead of the user's.
        (
            {"TOLLGATE_CONTRACT_DIR": "/srv/contracts"},
            [
                "TOLLGATE_CONTRACT_DIR is not a variable tollgate reads (did you mean "
                "TOLLGATE_CONTRACTS_DIR?)"
            ],
        ),  # fmt: skip
    ],
)
def test_sandbox_mode_refuses_unsafe_or_misspelled_setups(monkeypatch, variables, expected):
    set_env(monkeypatch, **variables)
    with pytest.raises(EnvironmentError) as refused:
        environment.setup()
    for text in expected:
        assert text in str(refused.value)


def test_a_mix_loads_once_each_sandbox_service_is_opted_in(monkeypatch):
    set_env(monkeypatch, **FIVETRAN, **SNOWFLAKE, TOLLGATE_SANDBOX_SERVICES="looker")
    setup = environment.setup()
    assert setup.real == {"fivetran", "snowflake"}
    assert setup.tags()["tollgate/looker"] == "the local Looker sandbox"


def test_the_fivetran_sandbox_never_writes_into_a_real_warehouse(monkeypatch, snowflake):
    """fakesnow stands in for the real Snowflake the credentials point at."""
    set_env(monkeypatch, **SNOWFLAKE)
    monkeypatch.setattr(environment, "warehouse", lambda: snowflake)
    payments = fivetran_sync.source("payments_sandbox")

    def landed() -> bool:
        try:
            return bool(snowflake.columns("payments", "charges"))
        except TableNotFound:
            return False

    # Sandbox mode with only Snowflake set is refused by setup() itself; production with every
    # credential set is a valid setup, so there the guard's own refusal is what stops the sync.
    for mode, more in (("sandbox", {}), ("production", {**FIVETRAN, **LOOKER})):
        set_env(monkeypatch, TOLLGATE_ENV=mode, **more)
        fivetran_sync.sync_now(payments)
        state = fivetran_sync.connector_details(payments)
        assert state["failed_at"] and not landed(), mode
        message = state["status"]["tasks"][0]["message"]
        assert "EnvironmentError" in message, mode
        if mode == "production":
            assert "lands generated rows only into its own warehouse" in message
    # The opt-in is what lets it write, so the assertions above could have failed. (Landing the
    # 17,000 sample rows through fakesnow takes minutes: the guard's answer is checked instead.)
    for name in {**FIVETRAN, **LOOKER}:
        monkeypatch.delenv(name)
    set_env(monkeypatch, TOLLGATE_ENV="sandbox", TOLLGATE_SANDBOX_SERVICES="fivetran,looker")
    environment.sandbox_may_write(snowflake)


def test_the_documented_postgres_storage_is_valid_config_with_an_installed_driver():
    """dagster.yaml's comments show the production storage block. Without `scheme`, SQLAlchemy
    2.1 asks for psycopg 3, which dagster-postgres does not install: the block failed as shown."""
    import sqlalchemy
    import yaml
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema
    from dagster_postgres.utils import pg_url_from_config

    from pipeline.settings import REPO_ROOT

    text = (REPO_ROOT / "dagster.yaml").read_text()
    block = re.search(r"^# storage:\n((?:#  .*\n)+)", text, re.MULTILINE)
    assert block, "dagster.yaml no longer documents a Postgres storage block"
    config = yaml.safe_load("storage:\n" + re.sub(r"^# ?", "", block[1], flags=re.MULTILINE))
    assert validate_config(dagster_instance_config_schema(), config).success
    settings = {k: "x" for k in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD")}
    db = {
        k: settings.get(v["env"], "db") if isinstance(v, dict) else v
        for k, v in config["storage"]["postgres"]["postgres_db"].items()
    }
    engine = sqlalchemy.create_engine(pg_url_from_config({"postgres_db": db}))  # loads the driver
    assert engine.dialect.driver == "psycopg2"


def test_local_events_are_kept_in_one_sqlite_file(tmp_path, monkeypatch):
    """dagster.yaml keeps every run's events in one SQLite file (a subclass of Dagster's
    ConsolidatedSqliteEventLogStorage), not a file per run plus an index: each event is one
    write instead of two or three, the 100-table gate 0.82x (benchmarks/README.md). A later
    run still reads an earlier run's check results, as publish and refresh do."""
    import shutil

    from dagster import AssetCheckResult, DagsterInstance, asset, asset_check, materialize

    from pipeline.settings import REPO_ROOT

    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)  # its paths are relative to DAGSTER_HOME, where make runs

    @asset
    def landed() -> None: ...

    @asset_check(asset=landed, blocking=True)
    def ids_are_not_null() -> AssetCheckResult:
        return AssetCheckResult(passed=True)

    with DagsterInstance.from_config(str(tmp_path)) as instance:
        runs = [materialize([landed, ids_are_not_null], instance=instance) for _ in range(2)]
        assert all(run.success for run in runs)
        [(_, record)] = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [ids_are_not_null.check_key]
        ).items()
        assert record.run_id == runs[1].run_id
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.db"))
    assert files == [
        ".tollgate/dagster/history/events/event_log.db",
        ".tollgate/dagster/history/runs.db",
        ".tollgate/dagster/history/schedules/schedules.db",
    ]


def test_opening_the_warehouse_outside_a_run_builds_no_dagster_instance_each_time(monkeypatch):
    """Every sync step opens the warehouse twice; each open built a throwaway Dagster instance."""
    built, ephemeral = [], DagsterInstance.ephemeral
    monkeypatch.setattr(
        DagsterInstance, "ephemeral", staticmethod(lambda *a, **k: built.append(1) or ephemeral())
    )
    environment._resource_instance.cache_clear()  # as in a fresh process
    for _ in range(3):
        with environment.open_warehouse() as warehouse:
            assert warehouse.query("select 1 as one") == [{"one": 1}]
    assert len(built) == 1


def test_every_tollgate_variable_the_code_reads_is_known():
    """The list unknown names are refused against must hold every name the code reads."""
    root = Path(environment.__file__).parent
    read = {
        name
        for path in root.rglob("*.py")
        for name in re.findall(r"[\"'](TOLLGATE_[A-Z_]+)[\"']", path.read_text())
    }
    assert read and read <= set(environment.VARIABLES)
