"""Which contracted columns each LookML field shows, through field references, PDTs and CTEs."""

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlglot import exp
from sqlglot.lineage import Node, lineage

from pipeline.contract import ColumnContract, Contract, TableContract
from pipeline.looker_lineage import (
    FIELD_LISTS,
    FIELD_SQL,
    LIQUID,
    VIEW_TABLE,
    UnresolvedSql,
    parse_sql,
    sql_sources,
)
from pipeline.lookml_project import Model, load_model

Column = tuple[str, str, str]  # (schema, table, column), lower-case
# Measures that show a number computed over many rows, never one row's value.
AGGREGATES = {
    "count", "count_distinct", "sum", "sum_distinct", "average", "average_distinct",
    "running_total", "percent_of_total", "percent_of_previous", "period_over_period",
}  # fmt: skip
SHOWN_FIELDS = FIELD_LISTS  # every kind of field a user can pick or see
# `{{ view.field._value }}` (or _rendered_value, _linked_value) in html: or a link's url:
LIQUID_VALUE = re.compile(r"\b(\w+(?:\.\w+)?)\._(?:rendered_|linked_|filterable_)?value\b")
REFERENCE = re.compile(r"\$\{\s*([^}]*?)\s*\}")
TABLE_COLUMN = re.compile(r"\s*\$\{TABLE\}\.(\w+)\s*")
TABLE = "lookml_table"  # ${TABLE} in a field's SQL, as the qualifier sqlglot sees
REF = "lookml_ref_"  # ${field} / ${view.field} in a field's SQL, as a column sqlglot sees


class Unanalysable(ValueError):
    """A field whose shown columns cannot be known."""


def exposed_pii(
    project: Path,
    model: str,
    views: Iterable[str],
    contracts: Mapping[str, Contract],
    default_schema: str | None,
) -> list[str]:
    """Visible fields showing a raw (`allowed`) PII column with no access grant, or unanalysable."""
    lookml = load_model(project, model)
    columns = ShownColumns(lookml, default_schema)
    by_schema = {
        schema.lower(): contract
        for contract in contracts.values()
        for schema in (contract.connector, contract.published_schema)
        if schema
    }
    found = []
    for name in sorted(views):
        view = lookml.views.get(name, {})
        if view.get("required_access_grants"):  # every field of the view is granted
            continue
        for kind in SHOWN_FIELDS:
            for field in view.get(kind, []):
                if field.get("hidden") == "yes" or field.get("required_access_grants"):
                    continue
                label = f"{name}.{field['name']}"
                try:
                    shown = columns.shown(name, field["name"])
                except Exception as error:  # fail closed: a field we cannot follow may show PII
                    found.append(f"{label} ({field['_file']}) cannot be analysed: {error}")
                    continue
                for schema, table_name, column_name in sorted(shown):
                    match = contract_column(by_schema.get(schema), table_name, column_name)
                    if match and match[1].is_pii and match[1].pii_handling == "allowed":
                        table, column = match
                        found.append(
                            f"{label} shows {schema}.{table_name}.{column_name} "
                            f"({column.classification}, owner {table.owner})"
                        )
    return found


def contract_column(
    contract: Contract | None, table: str, column: str
) -> tuple[TableContract, ColumnContract] | None:
    """The contract's table and column of that name (compared case-insensitively)."""
    tables = {name.lower(): found for name, found in (contract.tables if contract else {}).items()}
    found = tables.get(table)
    match = next((c for c in found.columns if c.name.lower() == column), None) if found else None
    return (found, match) if match else None


class ShownColumns:
    """Follows a field's SQL to the warehouse columns whose values it shows."""

    def __init__(self, model: Model, default_schema: str | None):
        self.model, self.default_schema = model, default_schema
        self._busy: set[tuple[str, str, str]] = set()
        self._shown: dict[tuple[str, str], set[Column]] = {}
        self._sources: dict[tuple[str, str], set[Column]] = {}
        self._tables: dict[str, tuple[set[tuple[str, str]], set[str]]] = {}
        self._lineages: dict[str, dict[str, Node] | Exception] = {}  # derived-table view -> columns

    def shown(self, view: str, name: str) -> set[Column]:
        """Columns a field shows: its SQL's columns, and what every field it references shows."""
        kind, field = self._field(view, name)
        key = (view, field["name"])
        if key not in self._shown:
            references = LIQUID_VALUE.findall(
                " ".join([str(field.get("html", ""))]
                         + [str(link.get("url", "")) for link in field.get("links", [])])
            )  # fmt: skip
            if field.get("suggest_dimension"):  # filter suggestions show that field's values
                references.append(field["suggest_dimension"])
            own_sql = [field[k] for k in FIELD_SQL if isinstance(field.get(k), str)]
            texts = []
            if kind == "measures" and field.get("type") == "list":
                references.append(str(field.get("list_field")))
            elif kind == "measures" and field.get("type", "string") not in AGGREGATES:
                texts = own_sql
            elif kind in ("dimensions", "dimension_groups"):
                texts = own_sql or ["${TABLE}." + field["name"]]
            with self._guard(("field", *key)):
                shown = {c for text in texts for c in self._expression(view, text)}
                for reference in references:
                    shown |= self._reference(view, reference)
            self._shown[key] = shown
        return self._shown[key]

    def source_columns(self, view: str, column: str) -> set[Column]:
        """(schema, table, column) behind a column of a view's table or derived-table SQL."""
        if (view, column) not in self._sources:
            with self._guard(("column", view, column)):
                self._sources[view, column] = self._trace(view, column)
        return self._sources[view, column]

    def _trace(self, view: str, column: str) -> set[Column]:
        props = self._view(view)
        derived = props.get("derived_table")
        if derived is None:
            if view not in self._tables:
                self._tables[view] = sql_sources(
                    f"SELECT * FROM {props.get('sql_table_name', view)}"
                )
            tables, views = self._tables[view]
            if len(tables) + len(views) != 1:
                raise Unanalysable(f"sql_table_name of view {view} is not one table")
            if views:
                return self.source_columns(next(iter(views)), column)
            return {(*self._relation(*next(iter(tables))), column)}
        if "sql" not in derived:
            raise Unanalysable(f"view {view}: derived table without sql cannot be traced")
        if view not in self._lineages:
            try:
                (statement,) = parse_sql(derived["sql"])
                self._lineages[view] = lineage(
                    None, statement, schema=None, trim_selects=False, copy=False
                )
            except Exception as error:  # every column of this view is then untraceable
                self._lineages[view] = Unanalysable(f"view {view}: SQL not traced: {error}")
        columns = self._lineages[view]
        if isinstance(columns, Exception):
            raise columns
        # A column the SQL does not name comes through its `SELECT *`, from any table behind it.
        node = columns.get(column) or columns.get("*")
        if node is None:
            raise Unanalysable(f"view {view}: derived table SQL selects no column {column}")
        return {c for leaf in _leaves(node, column) for c in self._leaf(view, *leaf)}

    def _leaf(self, view: str, node: Node, name: str) -> set[Column]:
        if not isinstance(node.source, exp.Table):
            if node.expression.find(exp.Column, exp.Placeholder):  # a column sqlglot could not
                raise Unanalysable(f"view {view}: column {name} is not traced to a table")
            return set()  # a literal
        table, schema = node.source.name.lower(), node.source.db.lower()
        if not schema and table.startswith(VIEW_TABLE):
            return self.source_columns(table.removeprefix(VIEW_TABLE), name)
        return {(*self._relation(schema, table), name)}

    def _expression(self, view: str, text: str) -> set[Column]:
        if LIQUID.search(text):
            raise Unanalysable("Liquid templating in its SQL")
        if direct := TABLE_COLUMN.fullmatch(text):  # the common case, without parsing
            return self.source_columns(view, direct.group(1).lower())
        references: list[str] = []

        def placeholder(match: re.Match) -> str:
            if match.group(1) == "TABLE":
                return TABLE
            references.append(match.group(1))
            return f"{REF}{len(references) - 1}"

        try:
            (tree,) = parse_sql("SELECT " + REFERENCE.sub(placeholder, text))
        except UnresolvedSql as error:
            raise Unanalysable(str(error)) from None
        if any(isinstance(node, exp.Query) for node in tree.walk() if node is not tree):
            raise Unanalysable("a subquery in its SQL")
        shown = set()
        for column in tree.find_all(exp.Column):
            name, qualifier = column.name.lower(), column.table.lower()
            if name.startswith(REF) and not qualifier:
                shown |= self._reference(view, references[int(name.removeprefix(REF))])
            elif qualifier in ("", TABLE):
                shown |= self.source_columns(view, name)
            elif qualifier in self.model.views:  # a joined view's alias, written out
                shown |= self.source_columns(qualifier, name)
            else:
                raise Unanalysable(f"column {column.sql()} names no view")
        return shown

    def _reference(self, view: str, reference: str) -> set[Column]:
        target, _, name = reference.rpartition(".")
        if name.upper() in ("SQL_TABLE_NAME", "TABLE"):
            raise Unanalysable(f"${{{reference}}} in a field's SQL cannot be traced")
        return self.shown(target or view, name)

    def _field(self, view: str, name: str) -> tuple[str, dict[str, Any]]:
        props = self._view(view)
        for kind in SHOWN_FIELDS:
            for field in props.get(kind, []):
                if field["name"] == name:
                    return kind, field
        for group in props.get("dimension_groups", []):  # ${created_date} is group created
            if name.startswith(group["name"] + "_"):
                return "dimension_groups", group
        raise Unanalysable(f"references {view}.{name}, which is not defined")

    def _view(self, view: str) -> dict[str, Any]:
        if view not in self.model.views:
            raise Unanalysable(f"view {view} is not in model {self.model.name}")
        return self.model.views[view]

    def _relation(self, schema: str, table: str) -> tuple[str, str]:
        if schema:
            return schema, table
        if not self.default_schema:
            raise Unanalysable(f"table {table!r} names no schema and the connection has no "
                               "default_schema")  # fmt: skip
        return self.default_schema.lower(), table

    @contextmanager
    def _guard(self, key: tuple[str, str, str]) -> Iterator[None]:
        """Refuses to follow a reference back into itself."""
        if key in self._busy:
            raise Unanalysable(f"circular reference through {'.'.join(key[1:])}")
        self._busy.add(key)
        try:
            yield
        finally:
            self._busy.discard(key)


def _leaves(node: Node, name: str) -> Iterable[tuple[Node, str]]:
    """Leaf nodes of a column's lineage, with the column each reads (a star keeps the name)."""
    own = node.name.split(".")[-1].lower()
    if not node.downstream:
        yield node, name if own == "*" else own
    for child in node.downstream:
        yield from _leaves(child, name if own == "*" else own)
