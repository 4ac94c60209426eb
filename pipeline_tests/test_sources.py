"""Scope: the sandbox's sources: sample data, defects and CSV replay, landed as Fivetran would."""

import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipeline.checks.detect import pii_classes
from pipeline.checks.patterns import PATTERNS
from pipeline.sandbox.incremental import merge
from pipeline.sandbox.sources import CRM, DEFECTS, PAYMENTS, requested_defects, sources
from pipeline.warehouse import DuckDBWarehouse
from pipeline_tests.gate import SHOP_HEADER

SYNCED = datetime(2026, 3, 1, 12, tzinfo=UTC)
EXAMPLES = (PAYMENTS, CRM)
SYSTEM_TYPES = {"_fivetran_synced": "TIMESTAMP WITH TIME ZONE", "_fivetran_deleted": "BOOLEAN"}
HEX64 = re.compile(r"[0-9a-f]{64}")
# (table, column) -> (parent table, nullable)
FOREIGN_KEYS = {
    ("charges", "customer_id"): ("customers", False),
    ("charges", "invoice_id"): ("invoices", True),
    ("invoices", "customer_id"): ("customers", False),
    ("contacts", "company_id"): ("companies", True),
    ("deals", "company_id"): ("companies", False),
    ("deals", "contact_id"): ("contacts", True),
}


def land(defects: frozenset[str] = frozenset(), synced_at: datetime = SYNCED):
    return {
        table: frame for src in EXAMPLES for table, frame in src.land(defects, synced_at).items()
    }


@pytest.fixture(scope="module")
def clean():
    return land()


def test_sources_without_csv_dir_are_the_two_examples():
    found = {(s.connector_id, s.schema, s.service): sorted(s.tables) for s in sources()}
    assert found == {
        ("payments_sandbox", "payments", "stripe"): ["charges", "customers", "invoices"],
        ("crm_sandbox", "crm", "hubspot"): ["companies", "contacts", "deals"],
    }


def test_landing_is_identical_run_to_run_apart_from_synced_at(clean):
    later = land(synced_at=SYNCED + timedelta(hours=6))
    for table, frame in clean.items():
        pd.testing.assert_frame_equal(
            frame.drop(columns="_fivetran_synced"), later[table].drop(columns="_fivetran_synced")
        )
        assert (later[table]["_fivetran_synced"] == pd.Timestamp(SYNCED + timedelta(hours=6))).all()
        assert str(frame["_fivetran_synced"].dtype) == "datetime64[us, UTC]"
        assert not frame["_fivetran_deleted"].any()


def test_row_counts(clean):
    counts = {table: len(frame) for table, frame in clean.items()}
    assert counts == {
        "customers": 2_000, "charges": 10_000, "invoices": 5_000,
        "companies": 500, "contacts": 3_000, "deals": 4_000,
    }  # fmt: skip


def test_ids_are_never_null_and_unique(clean):
    for table, frame in clean.items():
        assert frame["id"].notna().all(), table
        assert frame["id"].is_unique, table


def test_every_foreign_key_resolves(clean):
    for (table, column), (parent, nullable) in FOREIGN_KEYS.items():
        values = clean[table][column]
        assert nullable or values.notna().all(), (table, column)
        assert values.dropna().isin(clean[parent]["id"]).all(), (table, column)
    assert 0.25 < clean["charges"]["invoice_id"].isna().mean() < 0.35


def test_hashed_columns_are_sha256_hex_and_blocked_columns_never_land(clean):
    for src in EXAMPLES:
        for name, table in src.tables.items():
            frame = clean[name]
            assert not table.blocked & set(frame.columns), name
            for column in table.hashed:
                values = frame[column].dropna()
                assert len(values) and values.map(HEX64.fullmatch).all(), (name, column)
                assert values.nunique() > len(values) // 2, (
                    name,
                    column,
                )  # hashes of distinct values
    assert "last_name" not in clean["contacts"]


def test_no_pii_shaped_values_in_unhashed_text(clean):
    for src in EXAMPLES:
        for name, table in src.tables.items():
            frame = clean[name]
            texts = [c for c in frame if frame[c].dtype == "string" and c not in table.hashed]
            for column in texts:
                values = frame[column].dropna().unique()
                for kind, pattern in PATTERNS.items():
                    hits = [v for v in values if re.search(pattern, v)]
                    assert not hits, (name, column, kind, hits[:3])


def test_frames_land_in_duckdb_with_the_declared_types(clean, tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    for src in EXAMPLES:
        for name, table in src.tables.items():
            warehouse.write_table(src.schema, name, clean[name])
            declared = {c: t for c, t in table.columns.items() if c not in table.blocked}
            assert warehouse.columns(src.schema, name) == declared | SYSTEM_TYPES
    nulls = warehouse.query(
        'SELECT COUNT(*) - COUNT("contact_id") AS n, SUM("amount") AS total FROM "crm"."deals"'
    )[0]
    assert nulls["n"] == clean["deals"]["contact_id"].isna().sum() > 0
    assert nulls["total"] == sum(clean["deals"]["amount"].dropna())


def test_column_config_reports_hashing_and_blocking():
    contacts = CRM.column_config(frozenset())["contacts"]
    assert contacts["email"] == {"enabled": True, "hashed": True}
    assert contacts["phone"] == {"enabled": True, "hashed": True}
    assert contacts["last_name"] == {"enabled": False, "hashed": False}
    assert contacts["first_name"] == {"enabled": True, "hashed": False}
    assert PAYMENTS.column_config(frozenset())["customers"]["email"]["hashed"] is True
    raw = CRM.column_config(frozenset({"raw_pii"}))["contacts"]
    assert raw["email"]["hashed"] is False and raw["phone"]["hashed"] is True


def _handful(count: int) -> bool:
    return 5 <= count <= 25


def _orphans(f):
    return _handful((~f["charges"]["customer_id"].isin(f["customers"]["id"])).sum())


def _notes_with(f, kind):
    return _handful(f["deals"]["notes"].dropna().map(lambda v: kind in pii_classes(v)).sum())


# defect -> (tables it may change, what must be true of the landing)
DEFECT_CASES = {
    "null_ids": (
        {"charges", "deals"},
        lambda f: (
            _handful(f["charges"]["id"].isna().sum()) and _handful(f["deals"]["id"].isna().sum())
        ),
    ),
    "missing_column": (
        {"charges"},
        lambda f: (
            list(f["charges"])
            == [
                "id",
                "customer_id",
                "invoice_id",
                "amount",
                "status",
                "description",
                "created",
                "_fivetran_synced",
                "_fivetran_deleted",
            ]
        ),
    ),  # fmt: skip
    "type_change": (
        {"invoices"},
        lambda f: (
            f["invoices"]["amount_due"].dtype == "string"
            and f["invoices"]["amount_due"].str.fullmatch(r"[0-9]+[.][0-9]{2}").all()
        ),
    ),
    "raw_pii": (
        {"contacts"},
        lambda f: (
            f["contacts"]["email"].str.contains("@").all()
            and f["contacts"]["phone"].dropna().map(HEX64.fullmatch).all()
        ),
    ),
    "pii_in_free_text": ({"deals"}, lambda f: _notes_with(f, "email") and _notes_with(f, "ssn")),
    "duplicate_pk": (
        {"customers"},
        lambda f: (
            _handful(f["customers"]["id"].duplicated().sum()) and f["customers"]["id"].notna().all()
        ),
    ),
    "orphan_fk": ({"charges"}, _orphans),
    "stale": (
        {"companies"},
        lambda f: (
            f["companies"]["_fivetran_synced"] == pd.Timestamp(SYNCED - timedelta(days=3))
        ).all(),
    ),
}


def test_every_defect_has_a_case():
    assert set(DEFECT_CASES) == set(DEFECTS)


@pytest.mark.parametrize("defect", sorted(DEFECT_CASES))
def test_defect_lands_its_problem_and_only_in_its_tables(defect, clean):
    targets, problem = DEFECT_CASES[defect]
    damaged = land(frozenset({defect}))
    assert problem(damaged) and not problem(clean)
    for table, frame in clean.items():
        if table not in targets:
            pd.testing.assert_frame_equal(damaged[table], frame)


def test_defects_combine():
    damaged = land(frozenset({"null_ids", "orphan_fk", "stale"}))
    for defect in ("null_ids", "orphan_fk", "stale"):
        assert DEFECT_CASES[defect][1](damaged), defect


def test_type_change_lands_as_varchar(tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    warehouse.write_table("payments", "invoices", PAYMENTS.land(frozenset({"type_change"}), SYNCED)["invoices"])  # fmt: skip
    assert warehouse.columns("payments", "invoices")["amount_due"] == "VARCHAR"


def test_requested_defects_parse_the_environment(monkeypatch):
    assert requested_defects() == frozenset()
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", " null_ids , stale,, ")
    assert requested_defects() == {"null_ids", "stale"}


def test_unknown_defect_names_the_bad_one_and_the_valid_ones(monkeypatch):
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", "stale,nul_ids")
    with pytest.raises(ValueError, match=r"'nul_ids'.*null_ids.*stale"):
        requested_defects()
    with pytest.raises(ValueError, match="'bogus'"):
        CRM.land(frozenset({"bogus"}), SYNCED)


ORDERS = """id,amount,ordered_at,due,paid,price,note
1,1200,2026-01-02 10:00:00,2026-02-01,true,12.5,first order
2,,2026-01-03 11:30:00,,false,,
3,990,2026-01-04 09:15:00,2026-02-03,true,9.9,"gift, wrapped"
"""


@pytest.fixture
def csv_dir(tmp_path, monkeypatch):
    folder = tmp_path / "replay"
    (folder / "shop").mkdir(parents=True)
    (folder / "shop" / "orders.csv").write_text(ORDERS)
    (folder / "shop" / "regions.csv").write_text("code,name\nEU,Europe\n")
    (folder / "shop" / "readme.txt").write_text("not a table")
    monkeypatch.setenv("TOLLGATE_SANDBOX_CSV_DIR", str(folder))
    return folder


def test_csv_folders_become_connectors_with_sniffed_types(csv_dir):
    shop = sources()[-1]
    assert (shop.connector_id, shop.schema, shop.service) == ("shop_csv", "shop", "csv")
    assert sorted(shop.tables) == ["orders", "regions"]
    assert shop.tables["orders"].columns == {
        "id": "BIGINT", "amount": "BIGINT", "ordered_at": "TIMESTAMP", "due": "DATE",
        "paid": "BOOLEAN", "price": "DOUBLE", "note": "VARCHAR",
    }  # fmt: skip
    assert shop.column_config(frozenset())["orders"]["note"] == {"enabled": True, "hashed": False}


def test_csv_rows_upsert_by_the_contracts_primary_key(csv_dir, tmp_path, monkeypatch):
    """A changed CSV row updates in place, as Fivetran upserts by key, rather than landing as a
    new row beside a soft-deleted copy; a table without a contracted key matches by content."""
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "shop.yaml").write_text(
        SHOP_HEADER + "team: {name: shop-data}\n"
        "customProperties: [{property: fivetranConnectorId, value: shop_csv}]\n"
        "schema:\n  - name: orders\n    properties:\n"
        "      - {name: id, physicalType: BIGINT, primaryKey: true}\n"
    )
    monkeypatch.setenv("TOLLGATE_CONTRACTS_DIR", str(contracts))
    shop = sources()[-1]
    assert shop.tables["orders"].key == ("id",) and shop.tables["regions"].key == ()
    before = shop.land(frozenset(), SYNCED, {})["orders"]
    (csv_dir / "shop" / "orders.csv").write_text(ORDERS.replace("first order", "amended"))
    later = SYNCED + pd.Timedelta(hours=1)
    fresh = shop.land(frozenset(), later, {})["orders"]
    after = merge(before, fresh, later, shop.tables["orders"].key)  # as the sandbox's sync does
    assert sorted(after["id"]) == [1, 2, 3] and not after["_fivetran_deleted"].any()
    stamps = dict(zip(after["id"], after["_fivetran_synced"], strict=True))
    assert stamps[1] == later and stamps[2] == stamps[3] == SYNCED


def test_csv_replay_lands_rows_as_read_without_defects(csv_dir, tmp_path):
    shop = sources()[-1]
    frames = shop.land(frozenset({"null_ids", "stale", "raw_pii"}), SYNCED)
    orders = frames["orders"]
    assert orders["id"].tolist() == [1, 2, 3]
    assert orders["note"].tolist()[::2] == ["first order", "gift, wrapped"]
    assert (orders["_fivetran_synced"] == pd.Timestamp(SYNCED)).all()
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    for name, frame in frames.items():
        warehouse.write_table("shop", name, frame)
        assert warehouse.columns("shop", name) == shop.tables[name].columns | SYSTEM_TYPES
    assert warehouse.query('SELECT COUNT("amount") AS n FROM "shop"."orders"') == [{"n": 2}]


@pytest.mark.parametrize(
    "content",
    [b"", b"\n1,2\n", b"a,,b\n1,2,3\n", b"a,a\n1,2\n", b"id,name\n1,\xff\xfe\n"],
    ids=["empty", "blank_header", "unnamed_column", "repeated_column", "not_utf8"],
)
def test_bad_csv_names_the_file(csv_dir, content):
    (csv_dir / "shop" / "broken.csv").write_bytes(content)
    with pytest.raises(ValueError, match="broken.csv"):
        sources()


def test_missing_csv_dir_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TOLLGATE_SANDBOX_CSV_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="nowhere"):
        sources()


def test_csv_folder_cannot_take_an_example_connectors_schema(csv_dir):
    (csv_dir / "payments").mkdir()
    with pytest.raises(ValueError, match="payments"):
        sources()


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        (
            "tables:\n  orders: {hashd: [note]}\n",
            "unknown key `hashd` at table 'orders' (did you mean `hashed`?)",
        ),
        ("tabels: {}\n", "unknown key `tabels` at the top level (did you mean `tables`?)"),
        ("tables:\n  order: {hashed: [note]}\n", "table 'order' has no CSV"),
        ("tables:\n  orders: {blocked: [notes]}\n", "blocked names no CSV column 'notes'"),
    ],
)
def test_bad_fivetran_sidecar_names_the_file(csv_dir, sidecar, message):
    (csv_dir / "shop" / "fivetran.yaml").write_text(sidecar)
    with pytest.raises(ValueError, match="fivetran.yaml") as raised:
        sources()
    assert message in str(raised.value)


def test_sidecar_hashes_and_blocks_and_csv_system_columns_are_kept(csv_dir):
    (csv_dir / "shop" / "fivetran.yaml").write_text(
        "tables:\n  orders: {hashed: [note], blocked: [price]}\n"
    )
    (csv_dir / "shop" / "regions.csv").write_text(
        "code,name,_fivetran_synced,_fivetran_deleted\n"
        "EU,Europe,2026-02-01 10:00:00+00,false\nUS,Americas,2026-02-02 10:00:00+00,true\n"
    )
    shop = sources()[-1]
    assert shop.column_config(frozenset())["orders"]["note"] == {"enabled": True, "hashed": True}
    assert shop.column_config(frozenset())["orders"]["price"] == {"enabled": False, "hashed": False}
    frames = shop.land(frozenset(), SYNCED)
    assert "price" not in frames["orders"]
    assert frames["orders"]["note"].dropna().map(HEX64.fullmatch).all()
    regions = frames["regions"]
    assert regions["_fivetran_deleted"].tolist() == [False, True]
    assert regions["_fivetran_synced"].tolist() == [
        pd.Timestamp("2026-02-01 10:00", tz="UTC"),
        pd.Timestamp("2026-02-02 10:00", tz="UTC"),
    ]
    assert set(shop.tables["regions"].columns) == {"code", "name"}


def test_a_source_edit_keeps_each_csv_rows_own_system_columns(csv_dir):
    """Deleting a replayed row must not shift or break the sync stamps of the rows that stay."""
    (csv_dir / "shop" / "orders.csv").write_text(
        "id,amount,_fivetran_synced,_fivetran_deleted\n"
        "1,10,2026-02-01 10:00:00+00,false\n2,20,2026-02-02 10:00:00+00,true\n"
    )
    shop = sources()[-1]
    frames = shop.land(frozenset(), SYNCED, {"orders": {"delete": [1]}})
    assert frames["orders"]["id"].tolist() == [2]
    assert frames["orders"]["_fivetran_synced"].tolist() == [
        pd.Timestamp("2026-02-02 10:00", tz="UTC")
    ]
    assert frames["orders"]["_fivetran_deleted"].tolist() == [True]
