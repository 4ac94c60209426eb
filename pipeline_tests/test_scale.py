"""Scope: TOLLGATE_SANDBOX_SCALE (N connectors x M tables) and paging through the Fivetran sandbox."""

import filecmp

import pytest
import requests
from dagster import AssetKey
from dagster_fivetran import FivetranWorkspace
from dagster_fivetran import resources as fivetran_resources
from dagster_fivetran.resources import FivetranClient

from pipeline import environment, fivetran
from pipeline.contract import contracts_dir
from pipeline.looker_lineage import lookml_dir
from pipeline.sandbox import fivetran_api, paging, scale
from pipeline.settings import data_dir
from pipeline_tests.gate import failed_checks, materialized, run_gate


def test_scale_switch_serves_n_by_m_tables_with_matching_contracts_and_lookml(monkeypatch):
    monkeypatch.setenv("TOLLGATE_SANDBOX_SCALE", "3x2")
    result = run_gate()
    tables = {
        AssetKey(["fivetran", f"scale_{i:04d}", f"table_{j:03d}"])
        for i in range(3)
        for j in range(2)
    }
    published = {AssetKey(["published", *key.path[1:]]) for key in tables}
    models = {AssetKey(["lookml", f"scale_{i:04d}"]) for i in range(3)}
    refreshes = {AssetKey(["looker", f"scale_{i:04d}_etl"]) for i in range(3)}
    assert contracts_dir().is_relative_to(data_dir()) and lookml_dir().is_relative_to(data_dir())
    assert materialized(result) == tables | published | models | refreshes
    evaluations = result.get_asset_check_evaluations()
    assert {e.asset_key for e in evaluations} == tables | models
    # every rule of the generated contracts ran against the generated rows, and passed
    names = {e.check_name for e in evaluations if e.asset_key in tables}
    assert {"keys_are_unique", "foreign_keys_resolve", "pii_arrives_as_contracted"} <= names
    assert failed_checks(result) == {}
    assert result.success


def test_scale_switch_is_deterministic(monkeypatch, tmp_path):
    monkeypatch.setenv("TOLLGATE_SANDBOX_SCALE", "2x3")
    first = scale.generated("contracts").parent
    monkeypatch.setenv("TOLLGATE_DATA_DIR", str(tmp_path / "other"))
    second = scale.generated("contracts").parent
    assert first != second
    compared = filecmp.dircmp(first, second)
    assert not compared.diff_files and not compared.left_only and not compared.right_only
    assert len(list((second / "lookml" / "views").rglob("*.view.lkml"))) == 6
    assert scale.rows(1, 2).equals(scale.rows(1, 2))
    assert not scale.rows(1, 2).equals(scale.rows(1, 1))


@pytest.mark.parametrize("value", ["10", "0x5", "3 by 4", "1000x1000"])
def test_bad_scale_value_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("TOLLGATE_SANDBOX_SCALE", value)
    with pytest.raises(ValueError, match="TOLLGATE_SANDBOX_SCALE"):
        contracts_dir()


class FirstPageClient(FivetranClient):
    """dagster-fivetran 0.29's own client, pointed at the sandbox: reads one page of groups."""

    @property
    def api_base_url(self) -> str:
        return f"{fivetran_api.sandbox_url()}/v1"


class FirstPageWorkspace(FivetranWorkspace):
    def get_client(self) -> FivetranClient:
        return FirstPageClient(self.api_key, self.api_secret, 0, 0.1, 1.0, True)


@pytest.fixture
def small_pages(monkeypatch):
    """8 connectors in 3 groups (3, 3, 2); every list endpoint answers 2 items a page."""
    monkeypatch.setenv("TOLLGATE_SANDBOX_SCALE", "8x1")
    monkeypatch.setattr(scale, "CONNECTORS_PER_GROUP", 3)
    monkeypatch.setattr(paging, "DEFAULT_LIMIT", 2)
    monkeypatch.setattr(fivetran, "GROUPS_PAGE_SIZE", 2)
    monkeypatch.setattr(
        fivetran_resources,
        "DAGSTER_FIVETRAN_LIST_CONNECTIONS_FOR_GROUP_INDIVIDUAL_REQUEST_LIMIT",
        2,
    )


def test_workspace_reads_every_page_of_groups_and_connectors(small_pages):
    data = environment.fivetran_workspace().fetch_fivetran_workspace_data()
    assert sorted(c.name for c in data.connectors_by_id.values()) == [
        f"scale_{i:04d}" for i in range(8)
    ]
    assert len(data.destinations_by_id) == 3
    seen = fivetran_api.requests_seen()
    group_pages = [r for r in seen if r["path"] == "/v1/groups"]
    connector_pages = [r for r in seen if r["path"].endswith("/connectors")]
    assert len(group_pages) == 2 and "cursor" in group_pages[1]["query"]
    assert len(connector_pages) == 5  # 2 + 2 + 1
    assert sum("cursor" in r["query"] for r in connector_pages) == 2


def test_dagster_fivetran_alone_misses_groups_past_the_first_page(small_pages):
    plain = FirstPageWorkspace(account_id="sandbox", api_key="k", api_secret="s")
    data = plain.fetch_fivetran_workspace_data()
    assert len(data.connectors_by_id) == 6  # the two groups of the first page, 3 connectors each


def test_sandbox_pages_end_without_next_cursor_and_refuse_foreign_cursors(small_pages):
    url = f"{fivetran_api.sandbox_url()}/v1/groups"
    auth = ("k", "s")
    first = requests.get(url, auth=auth, params={"limit": 2}, timeout=30).json()["data"]
    last = requests.get(
        url, auth=auth, params={"limit": 2, "cursor": first["nextCursor"]}, timeout=30
    ).json()["data"]
    assert [g["id"] for g in first["items"] + last["items"]] == [
        f"scale_group_{g:03d}" for g in range(3)
    ]
    assert "nextCursor" not in last
    bad = requests.get(url, auth=auth, params={"cursor": "bm90LW91cnM="}, timeout=30)
    assert bad.status_code == 400 and "cursor" in bad.json()["message"]
    assert requests.get(url, auth=auth, params={"limit": 0}, timeout=30).status_code == 400
