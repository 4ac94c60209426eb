"""The one place environments are chosen: TOLLGATE_ENV and credentials pick real services or sandboxes.

Called when definitions are built, never at import. Secrets go in as dagster.EnvVar, so their
values are read only when a resource is initialised and never appear in definitions or logs.
"""

import difflib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dagster import DagsterInstance, EnvVar, build_resources
from dagster_fivetran import FivetranWorkspace
from dagster_looker import LookerResource

from pipeline.fivetran import GateFivetranWorkspace, SandboxFivetranWorkspace
from pipeline.looker import SandboxLookerResource
from pipeline.settings import duckdb_path
from pipeline.warehouse import DuckDBWarehouse, Warehouse

SANDBOX_SECRET = "sandbox"  # not a secret: the local sandboxes accept any credentials
MODES = ("sandbox", "production")
# Each service's credentials: every group must have one non-empty variable ("" counts as unset,
# as GitHub Actions passes a missing secret).
CREDENTIALS: dict[str, tuple[tuple[str, ...], ...]] = {
    "fivetran": (("FIVETRAN_API_KEY",), ("FIVETRAN_API_SECRET",)),
    "snowflake": (
        ("SNOWFLAKE_ACCOUNT",),
        ("SNOWFLAKE_USER",),
        ("SNOWFLAKE_DATABASE",),
        ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY"),
    ),
    "looker": (("LOOKERSDK_BASE_URL",), ("LOOKERSDK_CLIENT_ID",), ("LOOKERSDK_CLIENT_SECRET",)),
}
SANDBOX_NAMES = {
    "fivetran": "the local Fivetran sandbox",
    "snowflake": "DuckDB (local sandbox warehouse)",
    "looker": "the local Looker sandbox",
}


# Every TOLLGATE_ variable tollgate reads; any other is a typo that would silently change nothing.
VARIABLES = (
    "TOLLGATE_ENV", "TOLLGATE_SANDBOX_SERVICES", "TOLLGATE_DATA_DIR", "TOLLGATE_REPORTS_DIR",
    "TOLLGATE_CONTRACTS_DIR", "TOLLGATE_LOOKML_DIR", "TOLLGATE_LOOKER_BRANCH",
    "TOLLGATE_LOOKER_BRANCHES_DIR", "TOLLGATE_SANDBOX_DEFECTS", "TOLLGATE_SANDBOX_CSV_DIR",
    "TOLLGATE_SANDBOX_SCALE",
)  # fmt: skip


# Why a real service cannot work across the local sandbox warehouse.
ACROSS = {
    "fivetran": "real Fivetran lands in its own destination, never in the local DuckDB",
    "looker": "real Looker reads its own connection, never the local DuckDB tollgate publishes to",
}


class EnvironmentError(ValueError):
    """The environment cannot be used as configured; the message names what to set."""


@dataclass(frozen=True)
class Setup:
    """Which services are real and which are sandboxes, in which mode."""

    mode: str
    real: frozenset[str]

    def is_real(self, service: str) -> bool:
        return service in self.real

    def targets(self) -> dict[str, str]:
        """Where each service points, for logs and run tags: never a secret."""
        return {service: target(service, self.is_real(service)) for service in CREDENTIALS}

    def tags(self) -> dict[str, str]:
        return {"tollgate/environment": self.mode} | {
            f"tollgate/{service}": where for service, where in self.targets().items()
        }

    def describe(self) -> str:
        services = "; ".join(f"{service}: {where}" for service, where in self.targets().items())
        return f"TOLLGATE_ENV={self.mode}; {services}"


def _set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def missing(service: str) -> list[str]:
    """The credential variables of `service` that are unset or empty."""
    return [" or ".join(group) for group in CREDENTIALS[service] if not any(map(_set, group))]


def setup() -> Setup:
    """Read TOLLGATE_ENV, the credentials and TOLLGATE_SANDBOX_SERVICES; refuse what is unsafe."""
    for name in sorted(os.environ):
        if name.startswith("TOLLGATE_") and name not in VARIABLES:
            close = difflib.get_close_matches(name, VARIABLES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise EnvironmentError(
                f"{name} is not a variable tollgate reads{hint}; known: {', '.join(VARIABLES)}"
            )
    mode = os.environ.get("TOLLGATE_ENV", "").strip().lower() or "sandbox"
    if mode not in MODES:
        raise EnvironmentError(f"TOLLGATE_ENV={mode!r} is not one of {', '.join(MODES)}")
    opted = opted_in()
    if unknown := sorted(opted - set(CREDENTIALS)):
        raise EnvironmentError(
            f"TOLLGATE_SANDBOX_SERVICES names unknown services {unknown}; "
            f"known: {', '.join(CREDENTIALS)}"
        )
    gaps = {service: missing(service) for service in CREDENTIALS}
    if mode == "production":
        lacking = [f"{s} ({', '.join(gap)})" for s, gap in gaps.items() if gap]
        if lacking:
            raise EnvironmentError(
                "TOLLGATE_ENV=production needs credentials for every service; missing or "
                f"empty: {'; '.join(lacking)}. Nothing falls back to a sandbox in production."
            )
        if opted:
            raise EnvironmentError(
                f"TOLLGATE_SANDBOX_SERVICES={','.join(sorted(opted))} is not allowed with "
                "TOLLGATE_ENV=production: production uses no sandbox."
            )
        return Setup(mode, frozenset(CREDENTIALS))
    started = {s for s, group in CREDENTIALS.items() if any(_set(v) for g in group for v in g)}
    partial = [f"{s} ({', '.join(gaps[s])})" for s in sorted(started) if gaps[s]]
    if partial:
        raise EnvironmentError(
            f"credentials are incomplete for {'; '.join(partial)}: set them, or unset the "
            "service's variables to use its sandbox."
        )
    if both := sorted(started & opted):
        raise EnvironmentError(
            f"{', '.join(both)}: credentials are set and TOLLGATE_SANDBOX_SERVICES asks for the "
            "sandbox; unset one of the two."
        )
    real = frozenset(started)
    sandboxed = sorted(set(CREDENTIALS) - real - opted)
    if real and sandboxed:
        raise EnvironmentError(
            f"{', '.join(sorted(real))} {'is' if len(real) == 1 else 'are'} real but "
            f"{', '.join(sandboxed)} would be the local sandbox (credentials missing: "
            f"{'; '.join(', '.join(gaps[s]) for s in sandboxed)}). Set the credentials, or opt "
            f"in to the mix with TOLLGATE_SANDBOX_SERVICES={','.join(sorted(set(sandboxed) | opted))}."
        )
    if real and "snowflake" not in real:
        names = " and ".join(sorted(real))
        raise EnvironmentError(
            f"TOLLGATE_SANDBOX_SERVICES names snowflake while {names} "
            f"{'is' if len(real) == 1 else 'are'} real: "
            f"{'; '.join(ACROSS[s] for s in sorted(real))}. Checks in the local DuckDB would "
            f"judge data that is not the data handed over. Set the SNOWFLAKE_* credentials of "
            f"the warehouse {names} use{'s' if len(real) == 1 else ''}, or unset the "
            f"credentials of {names} to use the sandboxes throughout."
        )
    return Setup(mode, real)


def target(service: str, real: bool) -> str:
    if not real:
        return SANDBOX_NAMES[service]
    if service == "fivetran":
        return f"Fivetran API (account {os.environ.get('FIVETRAN_ACCOUNT_ID') or 'default'})"
    if service == "snowflake":
        return f"Snowflake {os.environ['SNOWFLAKE_ACCOUNT']}/{os.environ['SNOWFLAKE_DATABASE']}"
    return f"Looker {os.environ['LOOKERSDK_BASE_URL']}"


def sandbox_may_write(warehouse: Warehouse) -> None:
    """Raise unless this is the sandbox's warehouse, or the user handed it to the sandbox."""
    if isinstance(warehouse, DuckDBWarehouse) and Path(warehouse.path) == duckdb_path():
        return
    current = setup()
    if current.mode == "sandbox" and "fivetran" in opted_in():
        return
    raise EnvironmentError(
        f"the Fivetran sandbox lands generated rows only into its own warehouse "
        f"({duckdb_path()}); refusing to write into {type(warehouse).__name__} "
        f"({current.targets()['snowflake']}). To land sample data into a scratch Snowflake "
        "database, set TOLLGATE_SANDBOX_SERVICES=fivetran (sandbox mode only)."
    )


def opted_in() -> set[str]:
    """Services TOLLGATE_SANDBOX_SERVICES names: sandboxes the user accepts beside real services."""
    names = os.environ.get("TOLLGATE_SANDBOX_SERVICES", "").split(",")
    return {name.strip().lower() for name in names} - {""}


@contextmanager
def open_warehouse(configured: Warehouse | None = None) -> Iterator[Warehouse]:
    """The warehouse resource initialised outside a run (EnvVar read, nested resources set up)."""
    instance = _resource_instance()
    with build_resources({"warehouse": configured or warehouse()}, instance=instance) as resources:
        yield resources.warehouse


@cache
def _resource_instance() -> DagsterInstance:
    # Without one, build_resources builds a throwaway in-memory Dagster instance for every call
    # (0.1 s each, twice in every sync step), only to hand it to the resource's init context.
    return DagsterInstance.ephemeral()


os.register_at_fork(after_in_child=_resource_instance.cache_clear)  # a forked step makes its own


def fivetran_workspace() -> FivetranWorkspace:
    if setup().is_real("fivetran"):
        return GateFivetranWorkspace(
            account_id=EnvVar("FIVETRAN_ACCOUNT_ID") if _set("FIVETRAN_ACCOUNT_ID") else "default",
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
    if not setup().is_real("snowflake"):
        return DuckDBWarehouse(path=str(duckdb_path()))
    from dagster_snowflake import SnowflakeResource

    from pipeline.warehouse.snowflake import SnowflakeWarehouse

    optional = {
        key: EnvVar(f"SNOWFLAKE_{key.upper()}")
        for key in ("password", "private_key", "role", "warehouse")
        if _set(f"SNOWFLAKE_{key.upper()}")
    }
    return SnowflakeWarehouse(
        snowflake=SnowflakeResource(
            account=EnvVar("SNOWFLAKE_ACCOUNT"),
            user=EnvVar("SNOWFLAKE_USER"),
            database=EnvVar("SNOWFLAKE_DATABASE"),
            **optional,
        )
    )


def looker(warehouse: Warehouse) -> LookerResource:
    """Real Looker with credentials; else the sandbox, which runs its SQL in `warehouse`."""
    if setup().is_real("looker"):
        return LookerResource(
            base_url=EnvVar("LOOKERSDK_BASE_URL"),
            client_id=EnvVar("LOOKERSDK_CLIENT_ID"),
            client_secret=EnvVar("LOOKERSDK_CLIENT_SECRET"),
        )
    return SandboxLookerResource(
        base_url="sandbox",
        client_id=SANDBOX_SECRET,
        client_secret=SANDBOX_SECRET,
        warehouse=warehouse,
    )
