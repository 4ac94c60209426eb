"""Looker checks through the Looker API: the project validates, every explore's SQL runs, joins
do not fan out, and the LookML data tests pass."""

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from looker_sdk.error import SDKError
from looker_sdk.sdk.api40.methods import Looker40SDK
from looker_sdk.sdk.api40.models import SqlQueryCreate, WriteApiSession, WriteGitBranch, WriteQuery

from pipeline.contract import Contract
from pipeline.lookml_project import Model
from pipeline.lookml_rules import REF, TABLE_COLUMN, Outcome, aliases, contract_table, explores

BRANCH_VARIABLE = "TOLLGATE_LOOKER_BRANCH"
ONE_SIDE = {"many_to_one": ("joined",), "one_to_one": ("joined", "base")}


def branch() -> str | None:
    """The LookML branch to validate instead of production (CI on a pull request), if any."""
    return os.environ.get(BRANCH_VARIABLE) or None


def open_session(sdk: Looker40SDK, model: str) -> str:
    """The model's project name; on a branch, switch this API session to dev mode and check it out."""
    project = sdk.lookml_model(model).project_name or ""
    if name := branch():
        sdk.update_session(WriteApiSession(workspace_id="dev"))
        sdk.update_git_branch(project, WriteGitBranch(name=name))
    return project


def _message(error: Exception) -> str:
    return " ".join(str(getattr(error, "message", "") or error).split())


def project_validates(sdk: Looker40SDK, project: str) -> Outcome:
    """Looker's own LookML validation of the project (errors and fatal errors fail)."""
    validation = sdk.validate_project(project)
    errors = [
        f"{e.file_path or '?'}:{e.line_number or '?'} {e.message}"
        for e in validation.errors or []
        if (e.severity or "error") in ("error", "fatal")
    ]
    return Outcome(
        [f"{len(errors)} LookML errors in project {project}: {'; '.join(errors)}"]
        if errors
        else [],
        f"LookML project {project} validates",
        {"project": project, "errors": errors},
    )


def _run(sdk: Looker40SDK, model: str, explore: str, fields: list[str]) -> str | None:
    """Run an explore query with LIMIT 0; Looker's error, or None when the SQL ran."""
    query = WriteQuery(model=model, view=explore, fields=fields, limit="0")
    try:
        raw = sdk.run_inline_query("json", query)
        rows = json.loads(raw)  # an empty reply is an error, not a pass
    except (SDKError, ValueError) as error:
        return _message(error)
    errors = [r["looker_error"] for r in rows if isinstance(r, dict) and "looker_error" in r]
    if isinstance(rows, dict) and rows.get("errors"):
        errors += [str(e.get("message", e)) for e in rows["errors"]]
    return "; ".join(errors) or None


def explores_run(sdk: Looker40SDK, model: str, expected: Iterable[str] = ()) -> Outcome:
    """Every field of every explore compiles to SQL that runs (LIMIT 0); a failure names the field.

    `expected` are the explores the LookML defines: one Looker does not serve is a failure, so
    an empty or partial answer never passes as "nothing to run".
    """
    served = sdk.lookml_model(model).explores or []
    findings = [
        f"explore {name} is in the LookML but Looker does not serve it"
        for name in sorted(set(expected) - {summary.name for summary in served})
    ]
    counted = {}
    for summary in served:
        detail = sdk.lookml_model_explore(model, summary.name)
        fields = [*(detail.fields.dimensions or []), *(detail.fields.measures or [])]
        counted[summary.name] = len(fields)
        error = _run(sdk, model, summary.name, [f.name for f in fields])
        if error is None:
            continue
        by_name = {f.name: f for f in fields}
        broken = []
        for found in fields:  # one query per field finds the culprits (Spectacles' single mode)
            if (single := _run(sdk, model, summary.name, [found.name])) is not None:
                columns = _columns(found, by_name)
                named = _named(columns, single)
                broken.append(
                    f"explore {summary.name}: view {found.view}, field {found.name}, column "
                    f"{', '.join(named or columns) or '?'}: {single}"
                )
        findings += broken or [f"explore {summary.name}: {error}"]
    return Outcome(
        findings,
        f"{sum(counted.values())} fields in {len(counted)} explores compile and run",
        {"fields_per_explore": counted, "failures": findings},
    )


def _named(columns: list[str], error: str) -> list[str]:
    """The columns the database's error names: as missing (DuckDB, Snowflake), quoted, mentioned."""
    missing = r"(?:column(?: named)?|identifier) [\"'](?:\w+\.)?{}[\"']"
    for pattern in (missing, r"[\"'](?:\w+\.)?{}[\"']", r"\b{}\b"):
        named = [c for c in columns if re.search(pattern.format(re.escape(c)), error, re.I)]
        if named:
            return named
    return []


def _columns(found: Any, by_name: Mapping[str, Any], depth: int = 0) -> list[str]:
    """Warehouse columns a field reads: its ${TABLE}.column, and those of the fields it uses."""
    sql = found.sql or ""
    columns = TABLE_COLUMN.findall(sql)
    for ref in REF.findall(sql):
        target = ref if "." in ref else f"{found.view}.{ref}"
        if ref != "TABLE" and target in by_name and depth < 10:
            columns += _columns(by_name[target], by_name, depth + 1)
    return list(dict.fromkeys(columns))


def data_tests_pass(sdk: Looker40SDK, project: str, model: str) -> Outcome:
    """The model's LookML `test:` blocks, run by Looker; a failed assert or an error fails."""
    results = sdk.run_lookml_test(project, model=model)
    findings = [
        f"test {r.test_name}: {'; '.join(e.message or '' for e in r.errors or []) or 'failed'}"
        for r in results
        if not r.success
    ]
    shown = [
        {"test": r.test_name, "asserts": r.assertions_count, "failed": r.assertions_failed}
        for r in results
    ]
    return Outcome(findings, f"{len(results)} LookML data tests pass", {"tests": shown})


def joins_hold(sdk: Looker40SDK, lineage: Model, contracts: Mapping[str, Contract]) -> Outcome:
    """Each many_to_one / one_to_one join's "one" side is unique: by the contract, else a query."""
    findings, proofs = [], {}
    model = lineage.name
    for explore in explores(lineage):
        names = aliases(explore)
        for join in explore.get("joins", []):
            sides = ONE_SIDE.get(join.get("relationship", "many_to_one"))
            if not sides:
                continue  # one_to_many / many_to_many declare the fan-out; Looker aggregates for it
            where = f"explore {explore['name']}, join {join['name']}"
            try:
                keys = _join_keys(lineage, names, explore["name"], join)
            except ValueError as error:
                findings.append(f"{where}: {error}")
                continue
            for side in sides:
                alias, expressions = keys[side]
                proof, problem = _unique(sdk, lineage, model, names[alias], expressions, contracts)
                proofs[f"{where} ({alias})"] = proof
                if problem:
                    findings.append(
                        f"{where}: declared {join.get('relationship', 'many_to_one')} but {problem}"
                    )
    return Outcome(
        findings, f"{len(proofs)} join keys are unique on their one side", {"proofs": proofs}
    )


def _join_keys(
    lineage: Model, names: Mapping[str, str], base: str, join: Mapping[str, Any]
) -> dict[str, tuple[str, list[str]]]:
    """For each side of a join, (alias, key field names) from its sql_on equalities or foreign_key."""
    alias = join["name"]
    if "foreign_key" in join:
        pk = _primary_key(lineage.views[names[alias]])
        if pk is None:
            raise ValueError(f"foreign_key join to view {names[alias]}, which has no primary_key")
        return {"joined": (alias, [pk]), "base": (base, [str(join["foreign_key"]).split(".")[-1]])}
    joined, other = [], {}
    for part in re.split(r"\bAND\b", str(join.get("sql_on", "")), flags=re.IGNORECASE):
        match = re.fullmatch(r"\s*\$\{(\w+)\.(\w+)\}\s*=\s*\$\{(\w+)\.(\w+)\}\s*", part)
        if not match:
            continue  # a filter (e.g. on deleted rows), not a key equality
        (a, fa), (b, fb) = match.group(1, 2), match.group(3, 4)
        if alias not in (a, b) or a == b:
            continue
        mine, theirs = ((a, fa), (b, fb)) if a == alias else ((b, fb), (a, fa))
        joined.append(mine[1])
        other.setdefault(theirs[0], []).append(theirs[1])
    if not joined:
        raise ValueError(f"sql_on has no ${{{alias}.field}} = ${{view.field}} equality to verify")
    return {"joined": (alias, joined), "base": next(iter(other.items()))}


def _primary_key(view: Mapping[str, Any]) -> str | None:
    return next(
        (d["name"] for d in view.get("dimensions", []) if d.get("primary_key") == "yes"), None
    )


def _unique(
    sdk: Looker40SDK,
    lineage: Model,
    model: str,
    view_name: str,
    key_fields: list[str],
    contracts: Mapping[str, Contract],
) -> tuple[str, str | None]:
    """(how uniqueness was proven, the violation or None)."""
    view = lineage.views[view_name]
    dims = {
        d["name"]: str(d.get("sql", "${TABLE}." + d["name"])) for d in view.get("dimensions", [])
    }
    missing = [f for f in key_fields if f not in dims]
    if missing:
        return "", f"view {view_name} has no dimension {', '.join(missing)}"
    sqls = [dims[f] for f in key_fields]
    columns = [
        m.group(1) for s in sqls if (m := re.fullmatch(r"\s*\$\{TABLE\}\s*\.\s*\"?(\w+)\"?\s*", s))
    ]
    if "sql_table_name" in view and len(columns) == len(sqls):
        schema, table, found = contract_table(contracts, str(view["sql_table_name"]))
        if found is not None and found.severity.get("primary_key", "error") == "error":
            key = {c.name.lower() for c in found.columns if c.primary_key}
            unique = {c.name.lower() for c in found.columns if c.unique}
            wanted = {c.lower() for c in columns}
            if wanted == key or (len(wanted) == 1 and wanted <= unique):
                return (
                    f"contract: {schema}.{table}.{'+'.join(columns)} is a key, held by the blocking keys_are_unique",
                    None,
                )
    if "sql_table_name" in view:
        relation = str(view["sql_table_name"]).strip().rstrip(";")
    elif not REF.search(str(view["derived_table"].get("sql", ""))):
        relation = f"({str(view['derived_table']['sql']).strip().rstrip(';')})"
    else:
        return (
            "",
            f"the key of view {view_name} cannot be verified (derived table with LookML references)",
        )
    keys = [REF.sub(lambda m: "t" if m.group(1) == "TABLE" else m.group(0), s) for s in sqls]
    if any(REF.search(k) for k in keys):
        return "", f"the key of view {view_name} refers to other fields; it cannot be verified"
    selects = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys))
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    sql = (
        f"SELECT COUNT(*) AS repeated FROM (SELECT {selects} FROM {relation} AS t WHERE {not_null} "
        f"GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))} HAVING COUNT(*) > 1) AS d"
    )
    try:
        slug = sdk.create_sql_query(SqlQueryCreate(model_name=model, sql=sql)).slug
        rows = json.loads(sdk.run_sql_query(slug, "json") or "[]")
    except (SDKError, ValueError) as error:
        return sql, f"the uniqueness query on view {view_name} failed: {_message(error)}"
    if not rows or "looker_error" in rows[0]:
        return (
            sql,
            f"the uniqueness query on view {view_name} failed: {rows[0]['looker_error'] if rows else 'no rows'}",
        )
    repeated = int(rows[0]["repeated"])
    if repeated:
        return sql, (
            f"{repeated} values of {view_name}.{'+'.join(key_fields)} repeat, so the join fans out"
        )
    return f"query: {sql}", None
