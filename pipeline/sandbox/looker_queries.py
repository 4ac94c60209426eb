"""What the Looker sandbox runs in the warehouse: explore queries, SQL Runner, data tests, PDT builds."""

import datetime as dt
import decimal
from typing import Any

from pipeline.sandbox import looker_state
from pipeline.sandbox.looker_project import Project, project
from pipeline.sandbox.lookml_sql import Compiler, Explore, Unsupported, assertion_sql
from pipeline.warehouse import TableNotFound, Warehouse


class NoConnection(RuntimeError):
    """The sandbox was started without a warehouse, so it has no database connection."""


def _need(warehouse: Warehouse | None) -> Warehouse:
    if warehouse is None:
        raise NoConnection("connection 'warehouse' is not configured in this Looker sandbox")
    return warehouse


def compiler(found: Project, warehouse: Warehouse | None) -> Compiler:
    def built(table: str) -> bool:
        schema, name = table.split(".")
        try:
            return bool(_need(warehouse).columns(schema, name))
        except TableNotFound:
            return False

    return Compiler(found.views, warehouse.dialect if warehouse else "duckdb", built)


def explore(found: Project, model: str, name: str) -> Explore:
    if model not in found.models:
        raise looker_state.NotFound(f"Model '{model}' not found")
    for props in found.models[model].explores:
        if props["name"] == name:
            return Explore(name, props, found.views)
    raise looker_state.NotFound(f"Explore '{name}' not found in model '{model}'")


def describe_explore(model: str, name: str) -> dict[str, Any]:
    """A LookmlModelExplore: the explore's joins and every field with its LookML SQL."""
    found = project()
    chosen = explore(found, model, name)

    def describe(field) -> dict[str, Any]:
        props = field.props
        return {
            "name": f"{field.view}.{field.name}",
            "view": field.view,
            "category": field.kind,
            "type": props.get("type", "count" if field.kind == "measure" else "string"),
            "hidden": props.get("hidden") == "yes",
            "sql": props.get("sql", "${TABLE}." + props["name"]),
            "primary_key": props.get("primary_key") == "yes",
        }

    fields = chosen.fields()
    return {
        "id": f"{model}::{name}",
        "name": name,
        "model_name": model,
        "view_name": chosen.aliases[name],
        "project_name": found.name,
        "sql_always_where": chosen.props.get("sql_always_where"),
        "joins": [
            {
                "name": alias,
                "from_": join.get("from"),
                "relationship": join.get("relationship", "many_to_one"),
                "sql_on": join.get("sql_on"),
                "type": join.get("type", "left_outer"),
            }
            for alias, join in chosen.joins.items()
        ],
        "fields": {
            "dimensions": [describe(f) for f in fields if f.kind == "dimension"],
            "measures": [describe(f) for f in fields if f.kind == "measure"],
        },
    }


def run_query(warehouse: Warehouse | None, body: dict[str, Any], result_format: str) -> Any:
    """run_inline_query: the SQL (result_format sql) or the rows; SQL errors as `looker_error`."""
    found = project()
    chosen = explore(found, body.get("model", ""), body.get("view", ""))
    limit = body.get("limit")
    try:
        sql = compiler(found, warehouse).query(
            chosen,
            list(body.get("fields") or []),
            body.get("filters") or {},
            list(body.get("sorts") or []),
            int(limit) if limit not in (None, "") else 5000,
        )
    except Unsupported as error:
        return [{"looker_error": str(error)}]
    if result_format == "sql":
        return sql.encode()
    return _rows(warehouse, sql)


def run_sql(warehouse: Warehouse | None, slug: str) -> list[dict[str, Any]]:
    return _rows(warehouse, looker_state.sql_query(slug)["sql"] or "")


def _rows(warehouse: Warehouse | None, sql: str) -> list[dict[str, Any]]:
    try:
        rows = _need(warehouse).query(sql)
    except Exception as error:  # Looker answers a failed query with its error in the results
        return [{"looker_error": " ".join(str(error).split())}]
    return [{k: _json(v) for k, v in row.items()} for row in rows]


def _json(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return value


def run_tests(
    warehouse: Warehouse | None, model: str | None, test: str | None
) -> list[dict[str, Any]]:
    """run_lookml_test: each `test:` block's query, then each assert on every row it returns."""
    found = project()
    results = []
    for candidate in found.models.values():
        if model and candidate.name != model:
            continue
        for block in candidate.tests:
            if test and block["name"] != test:
                continue
            results.append(_run_test(found, warehouse, candidate.name, block))
    return results


def _run_test(
    found: Project, warehouse: Warehouse | None, model: str, block: dict[str, Any]
) -> dict[str, Any]:
    source = block.get("explore_source", {})
    asserts = block.get("asserts", [])
    errors: list[dict[str, Any]] = []
    failed = 0
    try:
        chosen = explore(found, model, source.get("name", ""))
        fields = [c.get("field") or f"{chosen.name}.{c['name']}" for c in source.get("columns", [])]
        filters = {
            k: v for group in source.get("filters__all", []) for i in group for k, v in i.items()
        }
        sorts = [f"{k} {v}" for s in source.get("sorts", []) for k, v in s.items()]
        limit = int(source["limit"]) if "limit" in source else None
        sql = compiler(found, warehouse).query(chosen, fields, filters, sorts, limit)
        for check in asserts:
            rows = _need(warehouse).query(assertion_sql(sql, check["expression"]))
            if rows[0]["failing"]:
                failed += 1
                errors.append(
                    _error(
                        model,
                        chosen.name,
                        f'Assertion "{check["name"]}" failed: {check["expression"].strip()} '
                        f"is false for {rows[0]['failing']} row(s)",
                    )
                )
    except Exception as error:
        failed = len(asserts)
        errors.append(_error(model, source.get("name"), " ".join(str(error).split())))
    return {
        "model_name": model,
        "test_name": block["name"],
        "assertions_count": len(asserts),
        "assertions_failed": failed,
        "errors": errors,
        "warnings": [],
        "success": not errors,
    }


def _error(model: str, explore_name: str | None, message: str) -> dict[str, Any]:
    return {"code": "lookml_test_failed", "severity": "error", "kind": "test",
            "message": message, "model_id": model, "explore": explore_name}  # fmt: skip


def list_tests() -> list[dict[str, Any]]:
    found = project()
    return [
        {
            "model_name": m.name,
            "name": t["name"],
            "explore_name": t.get("explore_source", {}).get("name"),
            "file": m.file,
        }  # fmt: skip
        for m in found.models.values()
        for t in m.tests
    ]


def build_pdt(warehouse: Warehouse | None, model: str, view: str) -> str:
    """Create the PDT's table in the scratch schema from its derived SQL; returns its name."""
    found = project()
    if view not in found.models[model].pdts:
        raise Unsupported(f"{view} in model {model} is not a persistent derived table")
    db = _need(warehouse)
    build = compiler(found, db)
    table = build.pdt_table(view)
    # Unquoted, as Looker writes scratch tables: the names are LookML identifiers.
    db.query(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
    db.query(f"CREATE OR REPLACE TABLE {table} AS {build.derived_sql(view)}")
    return table
