"""tollgate: contract tests where Fivetran hands data to the warehouse and Looker reads it."""

from functools import cache

__all__ = ["defs"]

YOUNGEST_GENERATION = 10_000  # objects allocated between collections of the youngest generation


@cache
def _defs():
    import gc

    # Loading allocates about 600,000 objects at 1,000 tables, nearly all kept for the life of
    # the process; the cyclic GC's full passes over them, repeated as the heap grew, took about
    # 2 s of the load. So it is paused while importing and building, and what was built moves
    # to the permanent generation (as the gc docs advise before forking; the run's forkserver
    # preloads this), which later passes skip. Cycles dropped while building stay unfreed
    # (80,000 objects, 7 MB at 1,000 tables): cheaper than the 0.4 s a collection first costs.
    # Dagster then builds each job and its snapshot from those definitions, allocating hundreds
    # of thousands of short-lived objects; collecting the youngest generation every 10,000
    # allocations instead of 700 cut the GC's time while resolving both jobs at 1,000 tables
    # from 0.22-0.26 s to 0.06-0.08 s.
    enabled = gc.isenabled()
    gc.disable()
    try:
        defs = _build()
        gc.freeze()
        gc.set_threshold(YOUNGEST_GENERATION, *gc.get_threshold()[1:])
        return defs
    finally:
        if enabled:
            gc.enable()


def _build():
    import warnings

    from dagster import BetaWarning, PreviewWarning

    from pipeline.definitions import build_definitions

    # Every process that loads the code location (code server, run worker, each step) printed
    # these two; neither is actionable here. LookerResource is beta, used on purpose, and
    # dagster-looker is pinned to 0.29.x in pyproject.toml. The preview function is called by
    # Dagster's own state-backed loader on behalf of dagster-fivetran, not by our code.
    warnings.filterwarnings("ignore", r"Class `LookerResource` is currently in beta", BetaWarning)
    warnings.filterwarnings(
        "ignore",
        r"Function `Definitions.with_reconstruction_metadata` is currently in preview",
        PreviewWarning,
        r"dagster\._core\.definitions\.definitions_load_context",
    )
    return build_definitions()


# `defs` is built on first access, not at import, so environment variables are read when
# Dagster loads the code location and importing a submodule (tests, the sandbox) stays cheap.
def __getattr__(name: str):
    if name == "defs":
        return _defs()
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "defs"]
