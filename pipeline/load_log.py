"""Messages about loading the definitions: printed by the process that loads them first, once.

Dagster loads the code location again in the run worker and in every step process of a
multiprocess run; those reconstructions would repeat each message about ten times per run.
"""

from functools import cache

from dagster import get_dagster_logger


def first_load() -> bool:
    """False while Dagster reconstructs definitions it already loaded (run worker, step process)."""
    # DefinitionsLoadContext is not exported from `dagster`; it is read here, never extended.
    from dagster._core.definitions.definitions_load_context import (
        DefinitionsLoadContext,
        DefinitionsLoadType,
    )

    return DefinitionsLoadContext.get().load_type == DefinitionsLoadType.INITIALIZATION


_quiet = False


def quiet() -> None:
    """Say nothing from here on: this process repeats a load another one has reported."""
    global _quiet
    _quiet = True


@cache
def _once(level: str, message: str) -> None:
    if first_load() and not _quiet:
        getattr(get_dagster_logger("tollgate"), level)(message)


def warn_once(message: str) -> None:
    """A load-time warning, logged once per load of the code location."""
    _once("warning", message)


def info_once(message: str) -> None:
    _once("info", message)
