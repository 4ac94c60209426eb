"""Which warehouse tables each Looker refresh reads, resolved from LookML completely or with problems."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from pipeline import load_cache
from pipeline.lookml_project import Model, Project, origin

LOOKML_DIR = Path(__file__).parent / "lookml"
REFRESHES_FILE = Path(__file__).parent / "looker_refreshes.yaml"
# `${view.SQL_TABLE_NAME}` stands in the SQL we parse as a table named VIEW_TABLE + view.
VIEW_TABLE = "lookml_sql_table_name__"
SQL_TABLE_NAME = re.compile(r"\$\{\s*(\w+)\.SQL_TABLE_NAME\s*\}", re.IGNORECASE)
LOOKML_REFERENCE = re.compile(r"\$\{[^}]*\}")
FIELD_REFERENCE = re.compile(r"\$\{(?!\s*\w+\.SQL_TABLE_NAME\s*\})[^}]*\}", re.IGNORECASE)
LIQUID = re.compile(r"\{\{|\{%")
SUBQUERY = re.compile(r"\bselect\b", re.IGNORECASE)
DIALECTS = (None, "snowflake", "bigquery")  # the connection's dialect is not in the LookML
FIELD_LISTS = ("dimensions", "dimension_groups", "measures", "filters", "parameters")
FIELD_SQL = ("sql", "sql_start", "sql_end", "sql_latitude", "sql_longitude")


def lookml_dir() -> Path:
    """The LookML project to read: TOLLGATE_LOOKML_DIR, else TOLLGATE_SANDBOX_SCALE's, else ours."""
    from pipeline.sandbox import scale  # generates its LookML on first use

    return Path(os.environ.get("TOLLGATE_LOOKML_DIR") or scale.generated("lookml") or LOOKML_DIR)


def refreshes_file() -> Path:
    """The Looker refreshes to run: TOLLGATE_SANDBOX_SCALE's for its generated LookML, else ours."""
    from pipeline.sandbox import scale

    generated = (
        None if os.environ.get("TOLLGATE_LOOKML_DIR") else scale.generated("looker_refreshes.yaml")
    )
    return generated or REFRESHES_FILE


class UnresolvedSql(ValueError):
    """SQL whose tables cannot be known: templated, unparseable, or calling table functions."""


@dataclass(frozen=True)
class RefreshLineage:
    tables: frozenset[tuple[str, str]]  # (schema, table), lower-case, as the SQL names them
    views: frozenset[str]  # LookML views whose data the refresh puts in front of users
    problems: tuple[str, ...]  # what could not be resolved, each naming its file and construct
    default_schema: str | None = None  # the model connection's, for unqualified table names
    connection: str = ""  # the model's Looker connection


def resolve_refresh(
    project: Project,
    datagroup: tuple[str, str] | None,
    pdt: tuple[str, str] | None,
    default_schemas: Mapping[str, str],
) -> RefreshLineage:
    """Tables read by a datagroup's explores and triggered PDTs, or by one PDT (model, view)."""
    models = {start[0] for start in (datagroup, pdt) if start}
    if len(models) != 1:
        raise LookupError(f"a refresh names one model, got {sorted(models) or 'none'}")
    model = project.model(models.pop())
    default_schema = default_schemas.get(model.connection)
    walk = _Walk(model, default_schema)
    if datagroup:
        if datagroup[1] not in model.datagroups:
            raise LookupError(
                f"{project.folder}: model {model.name!r} defines no datagroup {datagroup[1]!r}"
            )
        for name, explore in model.explores.items():
            cached = explore.get("persist_with", model.persist_with) == datagroup[1]
            if cached and explore.get("extension") != "required":
                walk.explore(name, explore)
        for name, view in model.views.items():
            if view.get("derived_table", {}).get("datagroup_trigger") == datagroup[1]:
                walk.view(name, f"{origin(view)}: datagroup_trigger")
    if pdt:
        if pdt[1] not in model.views:
            raise LookupError(f"{project.folder}: model {model.name!r} includes no view {pdt[1]!r}")
        walk.view(pdt[1], f"{model.file}: pdt")
    return RefreshLineage(
        tables=frozenset(walk.tables),
        views=frozenset(walk.views),
        problems=tuple(dict.fromkeys(model.problems + walk.problems)),
        default_schema=default_schema,
        connection=model.connection,
    )


# A derived table with one of these is persisted: Looker builds it on its own schedule.
PERSISTED = (
    "datagroup_trigger", "sql_trigger_value", "persist_for", "interval_trigger", "materialized_view",
)  # fmt: skip


def model_reads(
    model: Model, default_schema: str | None
) -> tuple[dict[tuple[str, str], str], list[str]]:
    """Every table Looker may query for the model, with the first place that reads it: its
    explores, the derived tables it persists, and its triggers' SQL; and what could not be
    resolved."""
    walk = _Walk(model, default_schema)
    for name, explore in model.explores.items():
        if explore.get("extension") != "required":
            walk.explore(name, explore)
    for name, view in model.views.items():
        derived = view.get("derived_table") or {}
        where = f"{origin(view, 'derived_table')}: view {name}"
        if any(derived.get(key, "no") != "no" for key in PERSISTED):
            walk.view(name, f"{where}: persisted derived table")
        if "sql_trigger_value" in derived:
            walk.read(where, "sql_trigger_value", derived["sql_trigger_value"])
    for name, datagroup in model.datagroups.items():
        if "sql_trigger" in datagroup:
            walk.read(
                f"{origin(datagroup)}: datagroup {name}", "sql_trigger", datagroup["sql_trigger"]
            )
    return walk.tables, list(dict.fromkeys(model.problems + walk.problems))


class _Walk:
    """Follows explores to views, and views to tables and to the views their SQL names."""

    def __init__(self, model: Model, default_schema: str | None):
        self.model, self.default_schema = model, default_schema
        self.tables: dict[tuple[str, str], str] = {}  # each table, with the first place reading it
        self.views: set[str] = set()
        self.explores: set[str] = set()
        self.problems: list[str] = []

    def explore(self, name: str, explore: dict[str, Any]) -> None:
        if name in self.explores:
            return
        self.explores.add(name)
        where = f"{origin(explore)}: explore {name}"
        if "sql_table_name" in explore:
            self.problems.append(f"{where}: sql_table_name on an explore is not resolved")
        self.view(explore.get("from") or explore.get("view_name") or name, where)
        for key in ("sql_always_where", "sql_always_having"):
            self._subquery(where, key, explore.get(key))
        for join in explore.get("joins", []):
            at = f"{join['_file']}: explore {name}: join {join['name']}"
            for key in ("sql_table_name", "sql"):
                if key in join:
                    self.problems.append(f"{at}: {key} on a join is not resolved")
            for key in ("sql_on", "sql_where"):
                self._subquery(at, key, join.get(key))
            self.view(join.get("from") or join.get("view_name") or join["name"], at)

    def view(self, name: str, referrer: str) -> None:
        if name in self.views:
            return
        view = self.model.views.get(name)
        if view is None:
            self.problems.append(
                f"{referrer}: view {name} is not defined in any file model {self.model.name} "
                "includes"
            )
            return
        self.views.add(name)
        where = f"{origin(view)}: view {name}"
        derived = view.get("derived_table")
        if derived is not None and "sql_table_name" in view:
            self.problems.append(f"{where}: has both sql_table_name and derived_table")
        if derived is None:  # Looker reads the view's name as a table when sql_table_name is unset
            table = view.get("sql_table_name", name)
            self.read(f"{origin(view, 'sql_table_name')}: view {name}", "sql_table_name",
                      f"SELECT * FROM {table}")  # fmt: skip
        elif "sql" in derived:
            self.read(f"{origin(view, 'derived_table')}: view {name}", "derived_table.sql",
                      derived["sql"])  # fmt: skip
        elif "explore_source" in derived:  # a native derived table queries an explore's views
            source = derived["explore_source"].get("name")
            at = f"{origin(view, 'derived_table')}: view {name}: derived_table.explore_source"
            if source in self.model.explores:
                self.explore(source, self.model.explores[source])
            else:
                self.problems.append(f"{at}: {source} is not an explore of model "
                                     f"{self.model.name}")  # fmt: skip
        else:
            self.problems.append(f"{origin(view, 'derived_table')}: view {name}: derived_table "
                                 "without sql cannot be resolved to tables")  # fmt: skip
        for kind in FIELD_LISTS:
            for field in view.get(kind, []):
                at = f"{field['_file']}: view {name}: {kind[:-1]} {field['name']}"
                for key in FIELD_SQL:
                    self._subquery(at, key, field.get(key))

    def _subquery(self, where: str, key: str, sql: Any) -> None:
        """Tables read by a subquery inside a field's or join's SQL expression."""
        if isinstance(sql, str) and SUBQUERY.search(sql):
            self.read(where, key, f"SELECT {FIELD_REFERENCE.sub('lookml_field', sql)}")

    def read(self, where: str, construct: str, sql: str) -> None:
        try:
            tables, views = sql_sources(sql)
        except UnresolvedSql as error:
            self.problems.append(f"{where}: {construct}: {error}")
            return
        for schema, table in tables:
            if schema or self.default_schema:
                self.tables.setdefault((schema or self.default_schema.lower(), table), where)
            else:
                self.problems.append(
                    f"{where}: {construct}: table {table!r} names no schema and connection "
                    f"{self.model.connection!r} has no default_schema"
                )
        for view in sorted(views):
            self.view(view, f"{where}: ${{{view}.SQL_TABLE_NAME}}")


def sql_sources(sql: str) -> tuple[set[tuple[str, str]], set[str]]:
    """(schema, table) pairs a SELECT reads (schema '' when unqualified; CTEs are not tables),
    and the views it names through ${view.SQL_TABLE_NAME}; kept on disk, as is UnresolvedSql."""
    # Parsing was half of reading the LookML (1,000 views: 0.3 s); the answer depends only on
    # the SQL, sqlglot's version and this module's code, which the digest covers.
    digest = load_cache.key(_code_fingerprint(), sql)
    found = load_cache.get("sql_sources", digest)
    if found is None:
        try:
            tables, views = _sql_sources(sql)
            found = {"tables": sorted(tables), "views": sorted(views)}
        except UnresolvedSql as error:
            found = {"error": str(error)}
        load_cache.put("sql_sources", digest, found)
    if "error" in found:
        raise UnresolvedSql(found["error"])
    return {(schema, table) for schema, table in found["tables"]}, set(found["views"])


@cache
def _code_fingerprint() -> str:
    return load_cache.key(f"sqlglot {sqlglot.__version__}", Path(__file__).read_text())


def _sql_sources(sql: str) -> tuple[set[tuple[str, str]], set[str]]:
    tables: set[tuple[str, str]] = set()
    views: set[str] = set()
    for statement in parse_sql(sql):
        try:
            ctes = {
                id(table)
                for scope in traverse_scope(statement)
                for table in scope.tables
                if not table.db and table.name in scope.cte_sources
            }
        except Exception as error:
            raise UnresolvedSql(f"SQL scopes could not be analysed: {error}") from None
        for table in statement.find_all(exp.Table):
            if id(table) in ctes:
                continue
            if not isinstance(table.this, exp.Identifier):
                raise UnresolvedSql(f"table function {table.sql()} cannot be resolved to tables")
            if table.catalog:
                raise UnresolvedSql(
                    f"{table.sql()} names a database; only the warehouse's own tables are gated"
                )
            name, schema = table.name.lower(), table.db.lower()
            if not schema and name.startswith(VIEW_TABLE):
                views.add(name.removeprefix(VIEW_TABLE))
            else:
                tables.add((schema, name))
    return tables, views


def parse_sql(sql: str) -> list[exp.Expression]:
    """SELECT statements with ${view.SQL_TABLE_NAME} as placeholder tables; Liquid is refused."""
    if LIQUID.search(sql):
        raise UnresolvedSql("Liquid templating ({{ }} or {% %}) cannot be resolved to tables")
    text = SQL_TABLE_NAME.sub(lambda m: VIEW_TABLE + m.group(1).lower(), sql).strip().rstrip(";")
    if leftover := LOOKML_REFERENCE.search(text):
        raise UnresolvedSql(f"LookML reference {leftover.group(0)} cannot be resolved to a table")
    first_error = None
    for dialect in DIALECTS:
        try:
            statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
        except sqlglot.errors.SqlglotError as error:
            first_error = first_error or error
            continue
        if statements and all(
            isinstance(s, exp.Query) and not s.find(exp.Command) for s in statements
        ):
            return statements
    detail = str(first_error).splitlines()[0] if first_error else "not a SELECT"
    raise UnresolvedSql(f"SQL could not be parsed ({detail})")
