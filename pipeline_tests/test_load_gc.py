"""Scope: loading the code location pauses the cyclic GC only while it builds, freezes what it
built, and leaves the GC on afterwards, also when the build fails with its own error; and it
does not import what only the sandbox's syncs use."""

import gc
import subprocess
import sys

import pytest

import pipeline
from pipeline.contract import ContractError


@pytest.fixture
def frozen():
    """The freeze count before the test; whatever the test froze is unfrozen after it."""
    gc.unfreeze()
    yield gc.get_freeze_count()
    gc.unfreeze()


def test_the_gc_is_paused_while_building_and_what_was_built_is_frozen(monkeypatch, frozen):
    during = []
    built = object()
    monkeypatch.setattr(pipeline, "_build", lambda: during.append(gc.isenabled()) or built)
    assert pipeline._defs.__wrapped__() is built
    assert during == [False]
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen


def test_a_failed_build_keeps_its_error_and_turns_the_gc_back_on(monkeypatch, frozen):
    def fail():
        raise ContractError("contracts/shop.yaml", "connector 'shop' does not sync this table")

    monkeypatch.setattr(pipeline, "_build", fail)
    with pytest.raises(ContractError, match="shop.yaml.*does not sync this table"):
        pipeline._defs.__wrapped__()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_gc_that_was_off_stays_off(monkeypatch, frozen):
    monkeypatch.setattr(pipeline, "_build", object)
    gc.disable()
    try:
        pipeline._defs.__wrapped__()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_definitions_modules_do_not_import_pandas_or_numpy():
    """pandas and numpy cost every loading process about 0.6 s; only the sandbox's landing needs them."""
    code = (
        "import sys, pipeline.definitions, pipeline.contract; pipeline.contract.contracts_dir(); "
        "print(sorted({'pandas', 'numpy'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
