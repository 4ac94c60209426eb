"""Rules judged on the LookML files themselves: columns exist in the contracts, deleted rows are
filtered. No Looker call; they also run in CI before a LookML change is deployed."""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from pipeline.contract import Contract, TableContract
from pipeline.looker_lineage import LIQUID, model_reads
from pipeline.lookml_project import Model
from pipeline.warehouse import Warehouse

REF = re.compile(r"\$\{([^}]+)\}")
TABLE_COLUMN = re.compile(r"\$\{TABLE\}\s*\.\s*\"?(\w+)\"?")
FIVETRAN_COLUMNS = ("_fivetran_synced", "_fivetran_deleted", "_fivetran_id")


@dataclass
class Outcome:
    """What one Looker check found: passed when `findings` is empty."""

    findings: list[str]
    summary_ok: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.findings

    @property
    def summary(self) -> str:
        if self.passed:
            return self.summary_ok
        shown = "; ".join(self.findings[:5])
        more = len(self.findings) - 5
        return shown + (f"; and {more} more" if more > 0 else "")


def served_explores(model: Model) -> list[str]:
    """Explores users can open: every one but those that exist only to be extended."""
    return [name for name, e in model.explores.items() if e.get("extension") != "required"]


def explores(model: Model) -> list[dict[str, Any]]:
    return list(model.explores.values())  # each already carries its name


def aliases(explore: Mapping[str, Any]) -> dict[str, str]:
    """Alias -> view name for an explore's base view and each join."""
    found = {explore["name"]: explore.get("from") or explore.get("view_name") or explore["name"]}
    for join in explore.get("joins", []):
        found[join["name"]] = join.get("from") or join["name"]
    return found


def model_views(model: Model, extra: tuple[str, ...] = ()) -> list[str]:
    """Every view the model's explores use, the views their derived tables read, and those of
    `extra` (the refreshes' views) that are views of the model."""
    names = {v for e in explores(model) for v in aliases(e).values()}
    names |= {v for v in extra if v in model.views}
    todo = list(names)
    while todo:
        sql = str(model.views.get(todo.pop(), {}).get("derived_table", {}).get("sql", ""))
        for ref in REF.findall(sql):
            name = ref.split(".")[0]
            if name in model.views and name not in names:
                names.add(name)
                todo.append(name)
    missing = sorted(n for n in names if n not in model.views)
    if missing:
        raise LookupError(
            f"{model.file}: model {model.name} uses views with no definition: {missing}"
        )
    return sorted(names)


def view_fields(view: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field name, LookML SQL) of every dimension, dimension group and measure."""
    for kind in ("dimensions", "dimension_groups"):
        for props in view.get(kind, []):
            yield props["name"], str(props.get("sql", "${TABLE}." + props["name"]))
    for props in view.get("measures", []):
        yield props["name"], str(props.get("sql", ""))


def contract_table(
    contracts: Mapping[str, Contract], sql_table_name: str
) -> tuple[str, str, TableContract | None]:
    """(schema, table, contract) of a sql_table_name: a landing or a published schema."""
    parts = sql_table_name.strip().rstrip(";").replace('"', "").replace("`", "").lower().split(".")
    schema, table = (parts[-2] if len(parts) > 1 else ""), parts[-1]
    for contract in contracts.values():
        if schema in (contract.connector.lower(), (contract.published_schema or "").lower()):
            return schema, table, contract.tables.get(table)
    return schema, table, None


Readable = Mapping[tuple[str, str], Any]  # (schema, table), lower case -> its publish asset


def readable_tables(published: Mapping[Any, TableContract]) -> dict[tuple[str, str], Any]:
    """(published schema, table) Looker may read -> the publish asset that writes it."""
    return {(t.published_schema.lower(), t.name.lower()): key for key, t in published.items()}


def unpublished(read: str, contracts: Mapping[str, Contract], readable: Readable) -> str | None:
    """Why Looker must not read the table `schema.table`; None for one tollgate publishes."""
    schema, _, name = read.lower().rpartition(".")
    if (schema, name) in readable:
        return None
    for contract in contracts.values():
        if schema == contract.connector.lower():
            return (
                f"reads {read}, Fivetran's landing table: read "
                f"{contract.published_schema}.{name}, the audited version, instead"
            )
        if schema == contract.published_schema.lower() and name in contract.tables:
            return (
                f"reads {read}, which nothing publishes: {contract.file.name} contracts it, but "
                f"connector {contract.connector!r} is not in the Fivetran workspace, so no check "
                "audits it"
            )
    return f"reads {read}, which no contract publishes (no check could gate it)"


def reads_published(
    lineage: Model,
    contracts: Mapping[str, Contract],
    readable: Readable,
    default_schema: str | None,
) -> Outcome:
    """Every table the model's explores, persisted derived tables and triggers read is one
    tollgate publishes, and every one of them resolves."""
    tables, problems = model_reads(lineage, default_schema)
    findings = [f"LookML not resolved: {p}" for p in problems]
    for (schema, table), where in sorted(tables.items()):
        problem = unpublished(f"{schema}.{table}", contracts, readable)
        if problem:
            findings.append(f"{where} {problem}")
    read = sorted(f"{schema}.{table}" for schema, table in tables)
    return Outcome(
        findings,
        f"the {len(read)} tables the model reads are all published by tollgate",
        {"tables": read},
    )


def columns_in_contracts(
    lineage: Model, views: list[str], contracts: Mapping[str, Contract]
) -> Outcome:
    """Every ${TABLE}.column a view uses exists in the contract of the table it reads."""
    findings, checked = [f"LookML not resolved: {p}" for p in lineage.problems], 0
    for name in views:
        view = lineage.views[name]
        used = [(f, c) for f, sql in view_fields(view) for c in TABLE_COLUMN.findall(sql)]
        if "derived_table" in view:
            outputs, problem = _derived_outputs(lineage, name, contracts)
            if problem:
                findings.append(problem)
                continue
            known, where = outputs, f"the derived table of view {name}"
        else:
            schema, table, found = contract_table(contracts, str(view.get("sql_table_name", "")))
            if found is None:
                findings.append(f"view {name} reads {schema}.{table}, which no contract covers")
                continue
            known = {c.name.lower() for c in found.columns} | set(FIVETRAN_COLUMNS)
            where = f"the contract of {schema}.{table} ({found.file.name if found.file else '?'})"
        for field_name, column in used:
            checked += 1
            if column.lower() not in known:
                findings.append(
                    f"view {name}, field {field_name}: column {column} is not in {where}"
                )
    return Outcome(
        findings,
        f"{checked} column references in {len(views)} views are all in the contracts",
        {"views": views, "problems": findings},
    )


def _derived_outputs(
    lineage: Model, name: str, contracts: Mapping[str, Contract]
) -> tuple[set[str], str | None]:
    """Output columns of a derived table whose SQL reads only contract columns, or the problem."""
    sql = str(lineage.views[name]["derived_table"].get("sql", "")).strip().rstrip(";")
    if not sql or REF.search(sql) or LIQUID.search(sql):
        return set(), (
            f"view {name}: derived table SQL with LookML references or Liquid cannot be checked "
            "against the contracts statically"
        )
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for contract in contracts.values():
        for table in contract.tables.values():
            columns = {c.name.lower(): "text" for c in table.columns}
            columns |= dict.fromkeys(FIVETRAN_COLUMNS, "text")
            for db in {contract.connector.lower(), (contract.published_schema or "").lower()} - {
                ""
            }:
                schema.setdefault(db, {})[table.name.lower()] = columns
    try:
        tree = sqlglot.parse_one(sql)
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            db, tname = table.db.lower(), table.name.lower()
            if tname not in ctes and tname not in schema.get(db, {}):
                return (
                    set(),
                    f"view {name}: derived table reads {db}.{tname}, which no contract covers",
                )
        tree = qualify(tree, schema=schema, validate_qualify_columns=True, identify=False)
    except Exception as error:
        return set(), f"view {name}: derived table SQL does not match the contracts: {error}"
    return {s.lower() for s in tree.named_selects}, None


def expand(
    lineage: Model, aliases_: Mapping[str, str], alias: str, sql: str, depth: int = 0
) -> str:
    """LookML SQL with ${TABLE} as alias and field references replaced by their SQL (for reading)."""
    if depth > 20:
        return sql

    def one(match: re.Match) -> str:
        ref = match.group(1)
        if ref == "TABLE":
            return alias
        target, _, name = ref.rpartition(".")
        target = target or alias
        view = lineage.views.get(aliases_.get(target, target), {})
        for field_name, field_sql in view_fields(view):
            if field_name == name:
                return f"({expand(lineage, aliases_, target, field_sql, depth + 1)})"
        return f"{target}.{name}"

    return REF.sub(one, sql)


def deleted_rows_filtered(
    lineage: Model, contracts: Mapping[str, Contract], warehouse: Warehouse
) -> Outcome:
    """Each explore over a table with _fivetran_deleted excludes deleted rows."""
    with warehouse.session():  # one connection for every table's columns
        return _deleted_rows_filtered(lineage, contracts, warehouse)


def _deleted_rows_filtered(
    lineage: Model, contracts: Mapping[str, Contract], warehouse: Warehouse
) -> Outcome:
    findings, checked = [], []
    for explore in explores(lineage):
        names = aliases(explore)
        always = str(explore.get("sql_always_where", ""))
        for alias, view_name in names.items():
            view = lineage.views[view_name]
            if "derived_table" in view:
                sql = str(view["derived_table"].get("sql", ""))
                tables = [t for t in _tables_in(sql) if _has_deleted(warehouse, *t)]
                if tables and "_fivetran_deleted" not in sql.lower():
                    findings.append(
                        f"explore {explore['name']}: the derived table of view {view_name} reads "
                        f"{', '.join('.'.join(t) for t in tables)} without excluding _fivetran_deleted rows"
                    )
                continue
            schema, table, _ = contract_table(contracts, str(view.get("sql_table_name", "")))
            if not _has_deleted(warehouse, schema, table):
                continue
            checked.append(f"{explore['name']}.{alias}")
            join = next((j for j in explore.get("joins", []) if j["name"] == alias), None)
            texts = [always] + ([str(join.get("sql_on", ""))] if join else [])
            expanded = " ".join(expand(lineage, names, explore["name"], t) for t in texts)
            mentions = rf'\b"?{re.escape(alias)}"?\s*\.\s*"?_fivetran_deleted\b'
            if not re.search(mentions, expanded, re.IGNORECASE):
                where = "its sql_on or sql_always_where" if join else "sql_always_where"
                findings.append(
                    f"explore {explore['name']}: view {alias} reads {schema}.{table}, which has "
                    f"_fivetran_deleted, and {where} does not exclude deleted rows"
                )
    return Outcome(
        findings,
        f"deleted rows are excluded wherever an explore reads them ({len(checked)} views)",
        {"checked": checked, "unfiltered": findings},
    )


def _tables_in(sql: str) -> list[tuple[str, str]]:
    try:
        tree = sqlglot.parse_one(REF.sub("placeholder", sql.strip().rstrip(";")))
    except Exception:
        raise ValueError(f"derived table SQL could not be parsed: {sql[:200]}") from None
    return sorted({(t.db.lower(), t.name.lower()) for t in tree.find_all(exp.Table) if t.db})


def _has_deleted(warehouse: Warehouse, schema: str, table: str) -> bool:
    # Raises when the table cannot be read: the caller fails the check rather than guess.
    return "_fivetran_deleted" in warehouse.columns(schema, table)
