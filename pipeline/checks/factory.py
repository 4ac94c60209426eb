"""One @multi_asset_check per contracted table: profile once, then every rule judges its slice."""

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetChecksDefinition,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from pipeline.checks import not_null
from pipeline.checks.profile import run_profile
from pipeline.checks.rule import Columns, Rule, Verdict
from pipeline.contract import TableContract
from pipeline.warehouse import Warehouse

RULES: tuple[Rule, ...] = (not_null.RULE,)


def fivetran_key(connector: str, table: str) -> AssetKey:
    return AssetKey(["fivetran", connector, table])


def build_table_checks(table: TableContract) -> AssetChecksDefinition | None:
    """The contract checks of one table, or None when no rule applies to it."""
    rules = [rule for rule in RULES if rule.applies(table)]
    if not rules:
        return None
    key = fivetran_key(table.connector, table.name)
    specs = [
        AssetCheckSpec(rule.check_name, asset=key, blocking=rule.blocking, description=rule.description)
        for rule in rules
    ]

    @multi_asset_check(
        specs=specs,
        name=f"{_safe(table.connector)}__{_safe(table.name)}__contract",
        description=f"Contract checks for {table.connector}.{table.name}, owned by {table.owner}.",
        can_subset=True,
    )
    def table_contract(context: AssetCheckExecutionContext, warehouse: Warehouse):
        selected = [r for r in rules if AssetCheckKey(key, r.check_name) in context.selected_asset_check_keys]
        context.log.info(f"Checking {table.connector}.{table.name}: {', '.join(r.check_name for r in selected)}")
        yield from evaluate(table, selected, warehouse)

    return table_contract


def evaluate(table: TableContract, rules: Sequence[Rule], warehouse: Warehouse) -> Iterator[AssetCheckResult]:
    """Judge every rule; a rule that cannot run fails with its error, never passes."""
    try:
        present = warehouse.columns(table.connector, table.name)
    except Exception as error:  # fail closed: an unreadable table fails every rule
        for rule in rules:
            yield _result(table, rule, Verdict(False, f"cannot read the table: {error}"), "")
        return
    profiles, sql = _profiles(table, rules, present, warehouse)
    for rule in rules:
        profile = profiles[rule.check_name]
        if isinstance(profile, Exception):
            verdict = Verdict(False, f"profiling query failed: {profile}")
        else:
            try:
                verdict = rule.judge(table, present, profile)
            except Exception as error:
                verdict = Verdict(False, f"rule could not be judged: {error!r}")
        yield _result(table, rule, verdict, sql.get(rule.check_name, ""))


def _profiles(
    table: TableContract, rules: Sequence[Rule], present: Columns, warehouse: Warehouse
) -> tuple[dict[str, Mapping[str, Any] | Exception], dict[str, str]]:
    """One query for all rules; if it fails, one query per rule so only the broken rule fails."""
    wanted = {rule.check_name: rule.metrics(table, present, warehouse.dialect) for rule in rules}
    combined = {(name, metric): expr for name, exprs in wanted.items() for metric, expr in exprs.items()}
    try:
        values, sql = run_profile(warehouse, table, {f"{n}/{m}": e for (n, m), e in combined.items()})
        return (
            {name: {m: values[f"{name}/{m}"] for m in exprs} for name, exprs in wanted.items()},
            dict.fromkeys(wanted, sql),
        )
    except Exception:
        profiles: dict[str, Mapping[str, Any] | Exception] = {}
        sqls: dict[str, str] = {}
        for name, exprs in wanted.items():
            try:
                profiles[name], sqls[name] = run_profile(warehouse, table, exprs)
            except Exception as error:
                profiles[name] = error
        return profiles, sqls


def _result(table: TableContract, rule: Rule, verdict: Verdict, sql: str) -> AssetCheckResult:
    description = verdict.summary if verdict.passed else f"{verdict.summary} (owner: {table.owner})"
    metadata: dict[str, Any] = {**verdict.metadata, "owner": table.owner}
    if sql:
        metadata["sql"] = MetadataValue.md(f"```sql\n{sql}\n```")
    return AssetCheckResult(
        asset_key=fivetran_key(table.connector, table.name),
        check_name=rule.check_name,
        passed=verdict.passed,
        severity=AssetCheckSeverity.ERROR if rule.blocking else AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)
