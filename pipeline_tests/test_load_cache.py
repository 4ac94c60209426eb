"""Scope: what loading keeps on disk (parsed LookML) is found only by
content: a changed file is read again, never served from the cache."""

import os

import lkml
import pytest
import yaml

from pipeline import lookml_project
from pipeline.looker import load_refreshes
from pipeline.settings import cache_dir

MODEL = (
    'connection: "warehouse"\ninclude: "/views/*.view.lkml"\ndatagroup: etl {}\npersist_with: etl\n'
)
VIEW = "view: charges {\n  sql_table_name: payments_published.%s ;;\n}\nexplore: charges {}\n"


def reads(tmp_path, table: str) -> tuple[str, ...]:
    """The tables the project's one refresh reads, with `charges` reading `table`, in a fresh
    process as far as LookML goes (nothing parsed in memory)."""
    project = tmp_path / "lookml"
    (project / "views").mkdir(parents=True, exist_ok=True)
    (project / "m.model.lkml").write_text(MODEL)
    view = project / "views" / "charges.view.lkml"
    view.write_text(VIEW % table)
    os.utime(view, (1_000_000_000, 1_000_000_000))  # same size and time for every `table`
    config = tmp_path / "looker_refreshes.yaml"
    config.write_text(
        yaml.safe_dump({"refreshes": [{"name": "r", "datagroup": {"model": "m", "name": "etl"}}]})
    )
    lookml_project._parsed.cache_clear()
    [refresh] = load_refreshes(config, project)
    return refresh.reads


@pytest.fixture
def lkml_calls(monkeypatch):
    """Every text lkml parses, in order."""
    calls = []
    real = lkml.load
    monkeypatch.setattr(lkml, "load", lambda text: calls.append(text) or real(text))
    return calls


def test_parsed_lookml_is_kept_and_served_by_content(tmp_path, lkml_calls):
    assert reads(tmp_path, "charges") == ("payments_published.charges",)
    assert len(lkml_calls) == 2  # the model and the view, parsed once
    assert reads(tmp_path, "charges") == ("payments_published.charges",)
    assert len(lkml_calls) == 2  # a new process reads both from the cache
    # Same path, size and modification time, other content: parsed again, the new table read.
    assert reads(tmp_path, "refunds") == ("payments_published.refunds",)
    assert lkml_calls[2:] == [VIEW % "refunds"]


def test_unreadable_cache_entries_are_parsed_again(tmp_path, lkml_calls):
    reads(tmp_path, "charges")
    for entry in (cache_dir() / "lkml").iterdir():
        entry.write_text("{not json")
    assert reads(tmp_path, "charges") == ("payments_published.charges",)
    assert len(lkml_calls) == 4
