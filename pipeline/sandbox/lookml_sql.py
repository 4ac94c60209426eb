"""A small LookML-to-SQL compiler for the shapes the example project uses (the Looker sandbox's)."""

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.lookml_rules import REF
from pipeline.sandbox.looker_project import PERSISTENCE

TIMEFRAMES = {
    "raw": "{x}",
    "time": "CAST({x} AS TIMESTAMP)",
    "date": "CAST({x} AS DATE)",
    "week": "CAST(DATE_TRUNC('week', {x}) AS DATE)",
    "month": "CAST(DATE_TRUNC('month', {x}) AS DATE)",
    "quarter": "CAST(DATE_TRUNC('quarter', {x}) AS DATE)",
    "year": "CAST(DATE_TRUNC('year', {x}) AS DATE)",
}
SCRATCH_SCHEMA = "looker_scratch"


class Unsupported(ValueError):
    """LookML the sandbox compiler does not handle (Liquid, unknown field types, filter syntax)."""


@dataclass
class Field:
    view: str  # the view's alias in the explore
    name: str
    kind: str  # dimension | measure
    props: Mapping[str, Any]
    timeframe: str | None = None


@dataclass
class Explore:
    """One explore of one model: its base view, joins and the views behind every alias."""

    name: str
    props: Mapping[str, Any]
    views: Mapping[str, Mapping[str, Any]]  # every view of the project by name
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> view name
    joins: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # alias -> join

    def __post_init__(self):
        self.aliases[self.name] = self.props.get("from") or self.props.get("view_name") or self.name
        for join in self.props.get("joins", []):
            self.aliases[join["name"]] = join.get("from") or join["name"]
            self.joins[join["name"]] = join
        for alias, view in self.aliases.items():
            if view not in self.views:
                raise Unsupported(f"explore {self.name}: {alias} names no view {view!r}")

    def view(self, alias: str) -> Mapping[str, Any]:
        return self.views[self.aliases[alias]]

    def fields(self) -> list[Field]:
        """Every dimension (one per timeframe of a dimension group) and measure, as Looker lists them."""
        found = []
        for alias in self.aliases:
            view = self.view(alias)
            for props in view.get("dimensions", []):
                found.append(Field(alias, props["name"], "dimension", props))
            for props in view.get("dimension_groups", []):
                for frame in props.get("timeframes", list(TIMEFRAMES)):
                    found.append(
                        Field(alias, f"{props['name']}_{frame}", "dimension", props, frame)
                    )
            for props in view.get("measures", []):
                found.append(Field(alias, props["name"], "measure", props))
        return found

    def field(self, alias: str, name: str) -> Field:
        if alias not in self.aliases:
            raise Unsupported(f"explore {self.name} has no view {alias!r} (field {alias}.{name})")
        for candidate in self.fields():
            if candidate.view == alias and candidate.name == name:
                return candidate
        raise Unsupported(f"explore {self.name}: view {alias} has no field {name!r}")


class Compiler:
    """Compiles explore queries, derived tables and LookML expressions to warehouse SQL."""

    def __init__(
        self,
        views: Mapping[str, Mapping[str, Any]],
        dialect: str,
        built_pdt: Callable[[str], bool] = lambda table: False,
    ):
        self.views, self.dialect, self.built_pdt = views, dialect, built_pdt

    # --- relations -------------------------------------------------------------------------
    def derived_sql(self, view: str, seen: tuple[str, ...] = ()) -> str:
        """A derived table's SQL with ${x.SQL_TABLE_NAME} resolved."""
        if view in seen:
            raise Unsupported(f"derived tables reference each other in a cycle: {seen}")
        sql = str(self.views[view]["derived_table"]["sql"]).strip().rstrip(";")
        return REF.sub(lambda m: self._table_ref(m.group(1), (*seen, view)), sql)

    def _table_ref(self, ref: str, seen: tuple[str, ...]) -> str:
        name, _, attribute = ref.partition(".")
        if attribute != "SQL_TABLE_NAME" or name not in self.views:
            raise Unsupported(
                f"derived table SQL may only use ${{view.SQL_TABLE_NAME}}, not ${{{ref}}}"
            )
        return self.relation(name, seen)

    def relation(self, view: str, seen: tuple[str, ...] = ()) -> str:
        """What a view reads: its sql_table_name, a built PDT, or its derived SQL as a subquery."""
        props = self.views[view]
        if "derived_table" not in props:
            if "sql_table_name" not in props:
                raise Unsupported(f"view {view} has neither sql_table_name nor derived_table")
            return str(props["sql_table_name"]).strip().rstrip(";")
        if is_persistent(props):
            table = self.pdt_table(view, seen)
            if self.built_pdt(table):
                return table
        return f"({self.derived_sql(view, seen)})"

    def pdt_table(self, view: str, seen: tuple[str, ...] = ()) -> str:
        """Scratch table of a PDT; like Looker's, its name changes when the SQL changes."""
        digest = hashlib.sha1(self.derived_sql(view, seen).encode()).hexdigest()[:8]
        return f"{SCRATCH_SCHEMA}.{view}_{digest}"

    # --- fields ----------------------------------------------------------------------------
    def expand(self, explore: Explore, alias: str, sql: str, depth: int = 0) -> str:
        """LookML SQL with ${TABLE}, ${field} and ${view.field} replaced by SQL."""
        if depth > 20:
            raise Unsupported(f"field references in view {alias} nest too deep (a cycle?)")
        if "{%" in sql or "{{" in sql:
            raise Unsupported(f"Liquid in view {alias} is not supported by the sandbox: {sql}")

        def one(match: re.Match) -> str:
            ref = match.group(1)
            if ref == "TABLE":
                return quote(alias)
            target, _, name = ref.rpartition(".")
            if name == "SQL_TABLE_NAME":
                return self.relation(explore.aliases.get(target, target))
            found = explore.field(target or alias, name)
            return f"({self.field_sql(explore, found, depth + 1, raw=True)})"

        return REF.sub(one, sql)

    def field_sql(self, explore: Explore, found: Field, depth: int = 0, raw: bool = False) -> str:
        """SQL of a dimension (raw: as other fields reference it) or a measure's aggregate."""
        props = found.props
        default = "${TABLE}." + (props["name"] if found.timeframe else found.name)
        base = self.expand(explore, found.view, str(props.get("sql", default)).strip(), depth)
        if found.kind == "measure":
            return self._measure(explore, found, base, depth)
        if found.timeframe:
            if found.timeframe not in TIMEFRAMES:
                raise Unsupported(f"timeframe {found.timeframe} of {found.view}.{props['name']}")
            return TIMEFRAMES[found.timeframe].format(x=base)
        kind = props.get("type", "string")
        if kind == "yesno" and not raw:
            return f"CASE WHEN {base} THEN 'Yes' ELSE 'No' END"
        if kind == "tier":
            return _tiers(base, [float(t) for t in props.get("tiers", [])])
        if kind not in ("string", "number", "yesno", "tier", "date", "zipcode", "location_id"):
            raise Unsupported(f"dimension type {kind} of {found.view}.{found.name}")
        return base

    def _measure(self, explore: Explore, found: Field, base: str, depth: int) -> str:
        props, kind = found.props, found.props.get("type", "count")
        condition = self._measure_filters(explore, found, depth)
        value = "1" if kind == "count" and "sql" not in props else base
        if condition:
            value = f"CASE WHEN {condition} THEN {value} END"
        if kind == "count":
            key = self._primary_key(explore, found.view, depth)
            if found.view != explore.name and key and not condition:
                return f"COUNT(DISTINCT {key})"
            return f"COUNT({value})" if condition else "COUNT(*)"
        if kind == "count_distinct":
            return f"COUNT(DISTINCT {value})"
        if kind == "sum":
            return f"COALESCE(SUM({value}), 0)"
        if kind in ("average", "min", "max"):
            return f"{'AVG' if kind == 'average' else kind.upper()}({value})"
        if kind == "list":
            agg = "LISTAGG" if self.dialect == "snowflake" else "STRING_AGG"
            return f"{agg}(DISTINCT CAST({value} AS VARCHAR), '|RECORD|')"
        if kind == "number":
            return base
        raise Unsupported(f"measure type {kind} of {found.view}.{found.name}")

    def _primary_key(self, explore: Explore, alias: str, depth: int) -> str | None:
        for props in explore.view(alias).get("dimensions", []):
            if props.get("primary_key") == "yes":
                pk = Field(alias, props["name"], "dimension", props)
                return self.field_sql(explore, pk, depth + 1, raw=True)
        return None

    def _measure_filters(self, explore: Explore, found: Field, depth: int) -> str:
        parts = []
        for group in found.props.get("filters__all", []):
            for item in group:
                for name, expression in item.items():
                    target = name if "." in name else f"{found.view}.{name}"
                    parts.append(self.condition(explore, target, expression, depth))
        return " AND ".join(parts)

    def condition(self, explore: Explore, name: str, expression: str, depth: int = 0) -> str:
        """A Looker filter expression on one field as SQL (strings, numbers, yes/no)."""
        alias, _, field_name = name.rpartition(".")
        target = explore.field(alias, field_name)
        sql = self.field_sql(explore, target, depth + 1, raw=True)
        if target.props.get("type") == "yesno":
            if expression.strip().lower() not in ("yes", "no"):
                raise Unsupported(f"yes/no filter {expression!r} on {name}")
            return f"({sql})" if expression.strip().lower() == "yes" else f"NOT ({sql})"
        return filter_sql(sql, expression, target.props.get("type") == "number")

    # --- queries ---------------------------------------------------------------------------
    def query(
        self,
        explore: Explore,
        fields: list[str],
        filters: Mapping[str, str] | None = None,
        sorts: list[str] | None = None,
        limit: int | None = None,
    ) -> str:
        """The SELECT Looker would run for an explore query (no symmetric aggregates)."""
        if not fields:
            raise Unsupported(f"a query on explore {explore.name} needs at least one field")
        chosen = [explore.field(*name.rsplit(".", 1)) for name in fields]
        selects = [f"{self.field_sql(explore, f)} AS {quote(f'{f.view}.{f.name}')}" for f in chosen]
        where, having = [], []
        for name, expression in (filters or {}).items():
            target = explore.field(*name.rsplit(".", 1))
            (having if target.kind == "measure" else where).append(
                self.condition(explore, name, expression)
            )
        for clause, key in ((where, "sql_always_where"), (having, "sql_always_having")):
            if key in explore.props:
                clause.insert(0, self.expand(explore, explore.name, str(explore.props[key])))
        used = {f.view for f in chosen} | {n.rsplit(".", 1)[0] for n in filters or {}}
        used |= {m for text in where + having for m in self._aliases_in(explore, text)}
        sql = f"SELECT {', '.join(selects)}\nFROM {self.relation(explore.aliases[explore.name])} AS {quote(explore.name)}"
        for alias in self._joins_needed(explore, used):
            join = explore.joins[alias]
            kind = str(join.get("type", "left_outer")).replace("_", " ").upper()
            on = self.expand(explore, alias, str(join.get("sql_on", "1=1")))
            sql += (
                f"\n{kind} JOIN {self.relation(explore.aliases[alias])} AS {quote(alias)} ON {on}"
            )
        if where:
            sql += "\nWHERE " + " AND ".join(f"({w})" for w in where)
        dims = [str(i + 1) for i, f in enumerate(chosen) if f.kind == "dimension"]
        if dims:
            sql += "\nGROUP BY " + ", ".join(dims)
        if having:
            sql += "\nHAVING " + " AND ".join(f"({h})" for h in having)
        if sorts:
            sql += "\nORDER BY " + ", ".join(_sort(s) for s in sorts)
        if limit is not None:
            sql += f"\nLIMIT {int(limit)}"
        return sql

    def _aliases_in(self, explore: Explore, text: str) -> set[str]:
        return {a for a in explore.aliases if re.search(rf'"{re.escape(a)}"\.', text)}

    def _joins_needed(self, explore: Explore, used: set[str]) -> list[str]:
        """Joins the query's fields need, plus the joins their sql_on depends on, in LookML order."""
        needed, todo = set(), [a for a in used if a in explore.joins]
        while todo:
            alias = todo.pop()
            if alias not in needed:
                needed.add(alias)
                refs = REF.findall(str(explore.joins[alias].get("sql_on", "")))
                todo += [r.split(".")[0] for r in refs if r.split(".")[0] in explore.joins]
                todo += list(explore.joins[alias].get("required_joins", []))
        return [alias for alias in explore.joins if alias in needed]


def is_persistent(view: Mapping[str, Any]) -> bool:
    return any(k in view.get("derived_table", {}) for k in PERSISTENCE)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def filter_sql(sql: str, expression: str, numeric: bool) -> str:
    """Looker filter expressions: `a,b`, `-a`, `%a%`, NULL, EMPTY; numbers also `>5`, `<=1`."""
    keep, drop = [], []
    for raw in (part.strip() for part in expression.split(",")):
        negated = raw.startswith("-") and not (numeric and raw[1:2].isdigit())
        term = raw[1:] if negated else raw
        if term.upper() == "NULL":
            test = f"{sql} IS NULL"
        elif term.upper() == "EMPTY":
            test = f"({sql} IS NULL OR {sql} = '')"
        elif numeric:
            match = re.fullmatch(r"(>=|<=|!=|>|<|=)?\s*(-?\d+(?:\.\d+)?)", term)
            if not match:
                raise Unsupported(f"number filter {expression!r}")
            test = f"{sql} {match.group(1) or '='} {match.group(2)}"
        elif "%" in term:
            test = f"{sql} LIKE {literal(term)}"
        else:
            test = f"{sql} = {literal(term.replace('^,', ','))}"
        (drop if negated else keep).append(test)
    parts = [f"({' OR '.join(keep)})"] if keep else []
    parts += [f"NOT COALESCE({d}, FALSE)" for d in drop]
    return " AND ".join(parts)


def _tiers(sql: str, tiers: list[float]) -> str:
    if not tiers:
        raise Unsupported("a tier dimension needs tiers")
    cases = [f"WHEN {sql} < {tiers[0]:g} THEN 'Below {tiers[0]:g}'"]
    for low, high in zip(tiers, tiers[1:], strict=False):
        cases.append(f"WHEN {sql} < {high:g} THEN '{low:g} to {high:g}'")
    cases.append(f"WHEN {sql} >= {tiers[-1]:g} THEN '{tiers[-1]:g} or Above'")
    return f"CASE {' '.join(cases)} ELSE 'Undefined' END"


def _sort(sort: str) -> str:
    name, _, direction = sort.strip().partition(" ")
    if direction.strip().lower() not in ("", "asc", "desc"):
        raise Unsupported(f"sort {sort!r}")
    return f"{quote(name)} {direction.strip().upper() or 'ASC'}"


def assertion_sql(query: str, expression: str) -> str:
    """Rows of a data test's query where a Looker assert expression does not hold."""
    sql = REF.sub(lambda m: f"q.{quote(m.group(1))}", expression.strip().rstrip(";"))
    sql = re.sub(r"\byes\b", "TRUE", re.sub(r"\bno\b", "FALSE", sql))
    sql = re.sub(r"\bis_null\(", "(NULL IS NOT DISTINCT FROM ", sql)
    return f"SELECT COUNT(*) AS failing FROM ({query}) AS q WHERE NOT COALESCE(({sql}), FALSE)"
