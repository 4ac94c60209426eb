"""Keys hold: primary keys and unique columns have no duplicates, foreign keys no orphans.

Only live rows count (Fivetran's soft-deleted rows are gone for every reader), on both sides of
a foreign key; text keys with leading or trailing whitespace are reported on their own.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlglot import exp

from pipeline.checks.freshness import SYNCED
from pipeline.checks.incremental import is_new
from pipeline.checks.live import DELETED, count_live, is_padded, is_text, live
from pipeline.checks.redact import redact
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.contract import NON_PII_CLASSES, TableContract, resolve_reference
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import column, count_where, identifier, table_ref
from pipeline.warehouse.types import type_family

SAMPLES = 5
BITMAP_MAX_BITS = 256_000_000  # 32 MB: a denser integer key is proven unique with a bitmap
FOREIGN_KEYS_CHECK = "foreign_keys_resolve"  # publish holds a table back with its parents


def key_sets(table: TableContract) -> list[tuple[str, ...]]:
    """The primary key (possibly composite), then every other unique column on its own."""
    primary = tuple(c.name for c in table.columns if c.primary_key)
    others = [(c.name,) for c in table.columns if c.unique and not c.primary_key]
    return ([primary] if primary else []) + others


def _col(name: str, dialect: str, alias: str | None = None) -> exp.Column:
    return exp.Column(
        this=identifier(name, dialect), table=exp.to_identifier(alias) if alias else None
    )


def duplicates_sql(
    table: TableContract,
    key: tuple[str, ...],
    dialect: str,
    limit: int | None,
    alive: exp.Expression | None = None,
    rows: exp.Expression | None = None,
) -> str:
    """Repeated keys among the table's live rows (or among `rows`, live rows already keyed)."""
    # GROUP BY ... HAVING is exact and stays within a small memory limit, where COUNT(DISTINCT) does not.
    cols = [_col(name, dialect) for name in key]
    keyed = exp.and_(
        *(exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in cols),
        *([alive] if alive is not None else []),
    )
    groups = (
        # Positional aliases: a key column named like an alias ("n", "keys") must not collide.
        exp.select(
            *(c.as_(f"k{i}") for i, c in enumerate(cols)), exp.Count(this=exp.Star()).as_("n")
        )
        .from_(rows if rows is not None else table_ref(*table.relation, dialect))
        .where(exp.true() if rows is not None else keyed)
        .group_by(*(c.copy() for c in cols))
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
    )
    if limit is not None:
        return (
            groups.order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True))
            .limit(limit)
            .sql(dialect)
        )
    summary = exp.select(
        exp.Count(this=exp.Star()).as_("keys"),
        # Not "rows": ROWS is reserved in Snowflake.
        exp.Coalesce(this=exp.Sum(this=exp.column("n")), expressions=[exp.Literal.number(0)]).as_(
            "duplicate_rows"
        ),
    )
    return summary.from_(groups.subquery("d")).sql(dialect)


def _dense_int_keys(table: TableContract, state: TableState, dialect: str) -> list[str]:
    """Single-column integer keys, which DuckDB can prove unique with a bitmap instead of a GROUP BY."""
    if dialect != "duckdb":
        return []
    found = []
    for key in key_sets(table):
        if len(key) == 1 and key[0] in state.columns:
            kind = exp.DataType.build(state.columns[key[0]], dialect=dialect).this
            if kind in exp.DataType.INTEGER_TYPES:
                found.append(key[0])
    return found


def range_metrics(
    table: TableContract, state: TableState, dialect: str
) -> dict[str, exp.Expression]:
    """Min, max and count of integer keys, from the shared profile."""
    found: dict[str, exp.Expression] = {}
    for name in [] if state.delta else _dense_int_keys(table, state, dialect):
        col = _col(name, dialect)
        found[f"min:{name}"] = exp.Min(this=col)
        found[f"max:{name}"] = exp.Max(this=col.copy())
    return found


def bitmap_sql(
    table: TableContract, name: str, low: int, high: int, alive: exp.Expression | None = None
) -> str:
    """Rows with a key minus distinct keys: 0 exactly when the key is unique."""
    col = _col(name, "duckdb")
    bits = exp.Anonymous(
        this="bitstring_agg",
        expressions=[col, exp.Literal.number(low), exp.Literal.number(high)],
    )
    excess = exp.Sub(
        this=exp.Count(this=col.copy()),
        expression=exp.Anonymous(this="bit_count", expressions=[bits]),
    )
    query = exp.select(excess.as_("excess")).from_(table_ref(*table.relation, "duckdb"))
    return (query.where(alive) if alive is not None else query).sql("duckdb")


def _unique_by_bitmap(
    table: TableContract,
    name: str,
    warehouse: Warehouse,
    profile: Mapping[str, Any],
    alive: exp.Expression | None,
) -> str | None:
    """The bitmap SQL when it proves the key unique; None when it cannot or finds duplicates."""
    low, high = profile.get(f"min:{name}"), profile.get(f"max:{name}")
    if low is None or high is None or high - low + 1 > BITMAP_MAX_BITS:
        return None
    sql = bitmap_sql(table, name, int(low), int(high), alive)
    return sql if warehouse.query(sql)[0]["excess"] == 0 else None


def delta_rows(
    table: TableContract, key: tuple[str, ...], state: TableState, dialect: str
) -> exp.Expression:
    """Keys of the live rows synced since the last passing audit, and of the older live rows
    sharing a key with one of them: the only rows a new duplicate can be among (the older rows'
    keys were unique when that audit passed)."""
    delta = state.delta
    if delta is None:  # a caller's bug; the rule then fails with this message, never passes
        raise ValueError(f"{table.connector}.{table.name}: no synced rows to judge keys on")

    def keyed(alias: str) -> exp.Expression:
        parts = [
            exp.Not(this=exp.Is(this=_col(n, dialect, alias), expression=exp.Null())) for n in key
        ]
        alive = live(state, dialect, alias)
        return exp.and_(*parts, *([alive] if alive is not None else []))

    new = exp.select(*(_col(n, dialect, "d") for n in key)).from_(
        table_ref(*delta.view, dialect).as_("d")
    )
    same = exp.and_(
        *(exp.EQ(this=_col(n, dialect, "d"), expression=_col(n, dialect, "o")) for n in key)
    )
    shares = exp.Exists(this=new.copy().where(same))
    old = (
        exp.select(*(_col(n, dialect, "o") for n in key))
        .from_(table_ref(*table.relation, dialect).as_("o"))
        .where(exp.and_(exp.Not(this=is_new(delta.since, dialect, "o")), keyed("o"), shares))
    )
    return exp.union(new.where(keyed("d")), old, distinct=False).subquery("r")


def uniqueness_followup(
    table: TableContract, state: TableState, warehouse: Warehouse, profile: Mapping[str, Any]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    dialect = warehouse.dialect
    for key in key_sets(table):
        if any(name not in state.columns for name in key):
            found[",".join(key)] = {"error": "key column missing"}
            continue
        alive = live(state, dialect)
        scope = delta_rows(table, key, state, dialect) if state.delta else None
        proof = None
        if scope is None and len(key) == 1:
            proof = _unique_by_bitmap(table, key[0], warehouse, profile, alive)
        if proof:
            found[key[0]] = {"duplicate_keys": 0, "duplicate_rows": 0, "sql": proof}
            continue
        sql = duplicates_sql(table, key, dialect, None, alive, scope)
        [summary] = warehouse.query(sql)
        entry = {
            "duplicate_keys": int(summary["keys"]),
            "duplicate_rows": int(summary["duplicate_rows"] or 0),
            "sql": sql,
        }
        if entry["duplicate_keys"]:
            rows = warehouse.query(duplicates_sql(table, key, dialect, SAMPLES, alive, scope))
            entry["samples"] = [_sample(table, key, row) for row in rows]
        found[",".join(key)] = entry
    return {"keys": found}  # apart from the profile's key ranges


def _sample(table: TableContract, key: tuple[str, ...], row: Mapping[str, Any]) -> dict[str, Any]:
    sample = {}
    for i, name in enumerate(key):
        contract = table.column(name)
        value = row[f"k{i}"]
        sample[name] = redact(value, contract.classification if contract else None)
    return {**sample, "rows": int(row["n"])}


def judge_unique(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    checked = profile["keys"]
    problems = []
    for key, entry in checked.items():
        if "error" in entry:
            problems.append(f"({key}): {entry['error']}")
        elif entry["duplicate_keys"]:
            problems.append(
                f"({key}): {entry['duplicate_keys']} values repeated over {entry['duplicate_rows']} rows"
            )
    return Verdict(
        passed=not problems,
        summary="; ".join(problems) or f"{len(checked)} keys unique",
        metadata={"keys": _without_sql(checked), "sql": _sql_of(checked)},
    )


def orphans_sql(
    table: TableContract,
    fk: str,
    target: str,
    dialect: str,
    child_live: exp.Expression | None = None,
    parent_live: exp.Expression | None = None,
    types: tuple[str, str] | None = None,
    parent_relation: tuple[str, str] | None = None,
) -> str:
    """Live child rows whose key matches no live parent row; `types` (child, parent) as landed.

    The parent is its landed table unless `parent_relation` names another (a snapshot)."""
    connector, parent, key = resolve_reference(table.connector, target)
    child_fk, parent_key = _col(fk, dialect, "c"), _col(key, dialect, "p")
    left, right = _comparable(child_fk.copy(), parent_key.copy(), types, dialect)
    on = exp.EQ(this=left, expression=right)
    if parent_live is not None:
        on = exp.and_(on, parent_live)
    return (
        exp.select(
            exp.Count(this=exp.Star()).as_("orphans"),
            exp.Min(this=child_fk.copy()).as_("example"),
        )
        .from_(table_ref(*table.relation, dialect).as_("c"))
        .join(
            table_ref(*(parent_relation or (connector, parent)), dialect).as_("p"),
            on=on,
            join_type="left",
        )
        .where(exp.Not(this=exp.Is(this=child_fk.copy(), expression=exp.Null())))
        .where(exp.Is(this=parent_key.copy(), expression=exp.Null()))
        .where(child_live if child_live is not None else exp.true())
        .sql(dialect)
    )


def _comparable(
    child: exp.Expression, parent: exp.Expression, types: tuple[str, str] | None, dialect: str
) -> tuple[exp.Expression, exp.Expression]:
    """Both sides of the join in one type, cast explicitly.

    An implicit VARCHAR-to-NUMBER cast fails on the first bad value and puts that value (maybe
    PII) in the error; TRY_CAST of the text side makes it NULL instead: an orphan, as it is.
    """
    if types is None:
        return child, parent
    families = [_family(t) for t in types]
    if families[0] == families[1]:
        return child, parent
    if families[0] == "text":
        return _try_cast(child, types[1], families[1], dialect), parent
    if families[1] == "text":
        return child, _try_cast(parent, types[0], families[0], dialect)
    as_text = exp.DataType.build("VARCHAR")
    return exp.Cast(this=child, to=as_text), exp.Cast(this=parent, to=as_text.copy())


def _try_cast(value: exp.Expression, type_name: str, family: str, dialect: str) -> exp.Expression:
    # NUMBER without a scale would round '1.5' to 2 and find a parent that is not there.
    target = "DECIMAL(38, 9)" if family == "number" else type_name
    value.type = exp.DataType.build("VARCHAR")  # else sqlglot writes CAST for Snowflake
    return exp.TryCast(this=value, to=exp.DataType.build(target, dialect=dialect))


def _family(type_name: str) -> str:
    try:
        return type_family(type_name)
    except ValueError:
        return type_name.lower()


def _foreign_keys(table: TableContract) -> list[tuple[str, str]]:
    return [(c.name, target) for c in table.columns for target in c.references]


def orphans_followup(
    table: TableContract, state: TableState, warehouse: Warehouse, profile: Mapping[str, Any]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for fk, target in _foreign_keys(table):
        relation = f"{fk} -> {target}"
        if fk not in state.columns:
            found[relation] = {"error": "column missing"}
            continue
        connector, parent, key = resolve_reference(table.connector, target)
        # A table referencing itself is judged against its own snapshot, not a later landing.
        itself = (connector, parent) == (table.connector, table.name)
        parent_relation = table.relation if itself else (connector, parent)
        parent_columns = state.columns if itself else warehouse.columns(connector, parent)
        if key.lower() not in parent_columns:
            found[relation] = {"error": f"{connector}.{parent} has no column {key}"}
            continue
        facts, whole = _parent_facts(
            relation, state, parent_columns, parent_relation, key, warehouse
        )
        children = (
            table if whole or state.delta is None else replace(table, audited=state.delta.view)
        )
        contract = table.column(fk)
        if contract and contract.classification not in (None, *NON_PII_CLASSES):
            # A hash sum of one PII key is that key's hash: the publish joins instead.
            facts["parent_key_hash"] = None
        found[relation] = {
            **count_orphans(
                children, state.columns, fk, target, parent_relation, parent_columns, warehouse
            ),
            **facts,
        }
        if state.delta is not None:
            found[relation]["child_rows_read"] = whole or "synced since the last passing audit"
    return {"foreign_keys": found}


def count_orphans(
    children: TableContract,
    child_columns: Mapping[str, str],
    fk: str,
    target: str,
    parent_relation: tuple[str, str],
    parent_columns: Mapping[str, str],
    warehouse: Warehouse,
) -> dict[str, Any]:
    """Live rows of `children` whose `fk` matches no live row of `parent_relation`, and one of them."""
    dialect = warehouse.dialect
    key = resolve_reference(children.connector, target)[2]
    parent_type = parent_columns.get(key.lower())
    sql = orphans_sql(
        children,
        fk,
        target,
        dialect,
        live(TableState(columns=child_columns), dialect, "c"),
        live(TableState(columns=parent_columns), dialect, "p"),
        (child_columns[fk], parent_type) if parent_type else None,
        parent_relation,
    )
    [row] = warehouse.query(sql)
    contract = children.column(fk)
    return {
        "sql": sql,
        "orphans": int(row["orphans"]),
        "example": redact(row["example"], contract.classification if contract else None),
    }


def parent_stamp(
    warehouse: Warehouse, relation: tuple[str, str], columns: Mapping[str, str], key: str
) -> dict[str, Any]:
    """The parent's rows, latest `_fivetran_synced` and live keys (their count and the sum of
    their hashes): two versions with the same live keys resolve the same foreign keys."""
    return _stamp_of(warehouse.query(_stamp_sql(relation, columns, key, warehouse.dialect))[0])


def _stamp_sql(
    relation: tuple[str, str],
    columns: Mapping[str, str],
    key: str,
    dialect: str,
    *more: exp.Expression,
) -> str:
    facts = [exp.Count(this=exp.Star()).as_("n"), *more]
    if SYNCED in columns:
        facts.append(exp.Max(this=column(SYNCED, dialect)).as_("synced"))
    value = _col(key, dialect)
    keyed = exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
    alive = live(TableState(columns=columns), dialect)
    keyed = exp.and_(keyed, alive) if alive is not None else keyed
    hashed = exp.Case(
        ifs=[exp.If(this=keyed.copy(), true=exp.Anonymous(this="HASH", expressions=[value]))]
    )
    facts.append(count_where(keyed).as_("keys"))
    facts.append(
        exp.Coalesce(this=exp.Sum(this=hashed), expressions=[exp.Literal.number(0)]).as_("key_hash")
    )
    return exp.select(*facts).from_(table_ref(*relation, dialect)).sql(dialect)


def _stamp_of(row: Mapping[str, Any]) -> dict[str, Any]:
    synced = row.get("synced")
    return {
        "parent_rows": int(row["n"]),
        "parent_synced": synced.isoformat() if hasattr(synced, "isoformat") else synced,
        "parent_keys": int(row["keys"] or 0),
        "parent_key_hash": str(int(row["key_hash"])),
    }


def _parent_facts(
    name: str,
    state: TableState,
    parent_columns: Mapping[str, str],
    relation: tuple[str, str],
    key: str,
    warehouse: Warehouse,
) -> tuple[dict[str, Any], str | None]:
    """The parent's stamp as read (see `parent_stamp`), and why every child row must be read
    (None: the new ones do).

    Older child rows resolved when the last audit passed; they can only lose their parent if
    the parent lost rows since: soft-deleted (a newer stamp) or gone (fewer rows than then)."""
    dialect = warehouse.dialect
    delta = state.delta
    stamped = DELETED in parent_columns and SYNCED in parent_columns
    gone = []
    if delta is not None and stamped:
        deleted = exp.EQ(this=column(DELETED, dialect), expression=exp.true())
        gone.append(count_where(exp.and_(deleted, is_new(delta.since, dialect))).as_("gone"))
    [row] = warehouse.query(_stamp_sql(relation, parent_columns, key, dialect, *gone))
    facts = _stamp_of(row)
    rows = facts["parent_rows"]
    if delta is None:
        return facts, None
    before = (delta.previous.get("foreign_keys") or {}).get(name) or {}
    if not isinstance(before.get("parent_rows"), int):
        return facts, "every child row: the last audit recorded no parent row count"
    if rows < before["parent_rows"]:
        return facts, f"every child row: the parent lost {before['parent_rows'] - rows:,} rows"
    if not stamped:
        return facts, "every child row: the parent has no _fivetran_deleted and _fivetran_synced"
    if int(row["gone"] or 0):
        return facts, f"every child row: {int(row['gone']):,} parent rows were deleted since"
    return facts, None


def judge_orphans(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    checked = profile["foreign_keys"]
    problems = []
    for relation, entry in checked.items():
        if "error" in entry:
            problems.append(f"{relation}: {entry['error']}")
        elif entry["orphans"]:
            problems.append(
                f"{relation}: {entry['orphans']} rows point nowhere (e.g. {entry['example']})"
            )
    return Verdict(
        passed=not problems,
        summary="; ".join(problems) or f"{len(checked)} foreign keys resolve",
        metadata={"foreign_keys": _without_sql(checked), "sql": _sql_of(checked)},
    )


def _text_keys(table: TableContract, state: TableState) -> list[str]:
    return [
        c.name
        for c in table.columns
        if (c.unique or c.references) and c.name in state.columns and is_text(state, c.name)
    ]


def whitespace_metrics(
    table: TableContract, state: TableState, dialect: str
) -> dict[str, exp.Expression]:
    return {
        f"padded:{name}": count_live(is_padded(name, dialect), state, dialect)
        for name in _text_keys(table, state)
    }


def judge_whitespace(
    table: TableContract, state: TableState, profile: Mapping[str, Any]
) -> Verdict:
    padded = {name: int(profile[f"padded:{name}"] or 0) for name in _text_keys(table, state)}
    bad = {name: n for name, n in padded.items() if n}
    return Verdict(
        passed=not bad,
        summary="; ".join(
            f"{name}: {n} keys with leading or trailing whitespace ('a' and 'a ' are "
            "different keys to the warehouse, the same to a reader)"
            for name, n in bad.items()
        )
        or f"no surrounding whitespace in {len(padded)} text key columns",
        metadata={"padded_keys": padded},
    )


def _sql_of(profile: Mapping[str, Any]) -> str:
    return ";\n".join(e["sql"] for e in profile.values() if "sql" in e)


def _without_sql(profile: Mapping[str, Any]) -> dict[str, Any]:
    return {k: {n: v for n, v in e.items() if n != "sql"} for k, e in profile.items()}


RULES = (
    Rule(
        check_name="keys_are_unique",
        family="primary_key",
        description="The primary key and every unique column hold no duplicate values (exact).",
        applies=lambda table: bool(key_sets(table)),
        metrics=range_metrics,
        judge=judge_unique,
        followup=uniqueness_followup,
        incremental=lambda table: "keys",
    ),
    Rule(
        check_name="keys_have_no_surrounding_whitespace",
        family="key_whitespace",
        description="Text keys (primary, unique, foreign) have no leading or trailing whitespace.",
        applies=lambda table: any(c.unique or c.references for c in table.columns),
        metrics=whitespace_metrics,
        judge=judge_whitespace,
        incremental=lambda table: "rows",
    ),
    Rule(
        check_name=FOREIGN_KEYS_CHECK,
        family="foreign_keys",
        description="Every foreign key value exists in the table it references.",
        applies=lambda table: bool(_foreign_keys(table)),
        judge=judge_orphans,
        followup=orphans_followup,
        incremental=lambda table: "keys",
    ),
)
