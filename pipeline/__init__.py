"""tollgate: contract tests where Fivetran hands data to the warehouse and Looker reads it."""

from functools import cache

__all__ = ["defs"]


@cache
def _defs():
    from pipeline.definitions import build_definitions

    return build_definitions()


# `defs` is built on first access, not at import, so environment variables are read when
# Dagster loads the code location and importing a submodule (tests, the sandbox) stays cheap.
def __getattr__(name: str):
    if name == "defs":
        return _defs()
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "defs"]
