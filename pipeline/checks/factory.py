"""One @multi_asset_check per connector; per table, profile once, then every rule judges its slice."""

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    DagsterInstance,
    MetadataValue,
    multi_asset_check,
)
from dagster_fivetran import FivetranWorkspace

from pipeline import publish, report
from pipeline.automation import CHECK_CONDITION
from pipeline.checks import (
    freshness,
    incremental,
    keys,
    not_null,
    pii,
    pii_scan,
    quality,
    scan_history,
    schema,
)
from pipeline.checks.fivetran_config import ConnectorConfig
from pipeline.checks.profile import run_profile
from pipeline.checks.redact import scrub_error
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.contract import TableContract
from pipeline.settings import REPO_ROOT
from pipeline.warehouse import Warehouse

AUDITED_VERSION = "audited_version"  # metadata key: the snapshot version a result judged
CONTRACT_DIGEST = "contract_digest"  # metadata key: the version of the contract it judged by
# A step hands its results to Dagster at least this often: a connection held longer would keep
# the UI without news of a large connector, and other steps out of a DuckDB file, for that long.
HOLD_SECONDS = 30.0

RULES: tuple[Rule, ...] = (
    not_null.RULE,
    *schema.RULES,
    *pii.RULES,
    pii_scan.RULE,
    *keys.RULES,
    *freshness.RULES,
)


def fivetran_key(connector: str, table: str) -> AssetKey:
    return AssetKey(["fivetran", connector, table])


def table_rules(table: TableContract) -> list[Rule]:
    """Every rule that applies to the table: the built-in families, then its ODCS quality rules."""
    return [rule for rule in RULES if rule.applies(table)] + quality.rules(table)


def build_connector_checks(
    tables: Sequence[TableContract], connector_id: str | None
) -> AssetChecksDefinition:
    """The contract checks of one connector's tables, one step; ERROR rules block their readers."""
    rules = {table.name: table_rules(table) for table in tables}
    specs = [
        AssetCheckSpec(
            rule.check_name,
            asset=fivetran_key(table.connector, table.name),
            blocking=rule.severity(table) == "error",
            description=f"{rule.description} Owner: {table.owner}.",
            automation_condition=CHECK_CONDITION,
        )
        for table in tables
        for rule in rules[table.name]
    ]
    connector = tables[0].connector

    # One step per connector, not per table: each step costs a process launch and Dagster's
    # bookkeeping (benchmarks/README.md). A failed blocking check fails the step, so in that run
    # the connector's other tables are held back with it; every publish still verifies its own.
    @multi_asset_check(
        specs=specs,
        name=f"{safe_name(connector)}__contract",
        description=f"Contract checks for the tables of {connector}, one result per rule.",
        can_subset=True,
    )
    def connector_contract(
        context: AssetCheckExecutionContext, warehouse: Warehouse, fivetran: FivetranWorkspace
    ):
        started = time.monotonic()
        config = ConnectorConfig(fivetran, connector_id) if connector_id else None
        selected = {
            table.name: [
                r
                for r in rules[table.name]
                if AssetCheckKey(fivetran_key(table.connector, table.name), r.check_name)
                in context.selected_asset_check_keys
            ]
            for table in tables
        }
        chosen = [(table, selected[table.name]) for table in tables if selected[table.name]]
        spent: dict[AssetKey, float] = {}
        results = check_tables(context, chosen, warehouse, config, spent)
        yield from report.recorded(context, results, started, spent)

    return connector_contract


def check_tables(
    context: AssetCheckExecutionContext,
    chosen: Sequence[tuple[TableContract, Sequence[Rule]]],
    warehouse: Warehouse,
    config: ConnectorConfig | None,
    spent: dict[AssetKey, float],
) -> Iterator[AssetCheckResult]:
    """Snapshot each table and judge its rules on the snapshot, tables in a row on one connection;
    an unexpected error fails the rules it left unjudged, not the other tables'. Fills `spent`
    with each table's seconds of work before its results."""
    # Opening a connection costs more than a small table's queries: DuckDB reads the file's whole
    # catalog under the file lock (0.3-0.5 s with its close at 1,000 tables; benchmarks/README.md),
    # Snowflake logs in. What Dagster recorded and Fivetran's config are read before it opens
    # (no sandbox server, which may land data through this warehouse, is called inside), and the
    # results reach Dagster after it closes: other steps need not wait for this step's records.
    known, failed = _inputs(context, chosen, config, spent)
    pending = [(table, rules) for table, rules in chosen if table.name not in failed]
    while pending:
        judged, pending = _judge_on_one_connection(
            context, pending, warehouse, known, failed, spent
        )
        for table, rules in chosen:
            if table.name in judged:
                yield from _with_failures(context, table, rules, judged[table.name], failed)
    for table, rules in chosen:
        if table.name not in known:  # what it needed from outside the warehouse failed
            yield from _with_failures(context, table, rules, [], failed)


def _judge_on_one_connection(
    context: AssetCheckExecutionContext,
    tables: Sequence[tuple[TableContract, Sequence[Rule]]],
    warehouse: Warehouse,
    known: Mapping[str, tuple[Any, dict[str, Any]]],
    failed: dict[str, Exception],
    spent: dict[AssetKey, float],
) -> tuple[dict[str, list[AssetCheckResult]], list[tuple[TableContract, Sequence[Rule]]]]:
    """Judge tables in order on one connection, for HOLD_SECONDS at most after the first one;
    returns their results and the tables left for the next connection."""
    judged: dict[str, list[AssetCheckResult]] = {}
    left = list(tables)
    opened = time.monotonic()
    try:
        with warehouse.session():
            while left and (not judged or time.monotonic() - opened < HOLD_SECONDS):
                table, rules = left.pop(0)
                judged[table.name] = []
                clock = time.monotonic()
                version = publish.new_version(context.run.run_id)
                context.log.info(
                    f"Checking {table.connector}.{table.name} as {publish.AUDIT_SCHEMA} version "
                    f"{version}: {len(rules)} rules"
                )
                fivetran, facts = known[table.name]
                try:
                    judged[table.name].extend(
                        _audit(context, table, rules, warehouse, version, fivetran, facts)
                    )
                except Exception as error:
                    failed[table.name] = error
                spent[fivetran_key(table.connector, table.name)] += time.monotonic() - clock
    except Exception as error:  # the connection itself: every table it did not judge fails
        unjudged = [t.name for t, _ in tables if t.name not in failed and not judged.get(t.name)]
        failed |= dict.fromkeys(unjudged, error)
        judged |= {name: judged.get(name, []) for name in unjudged}
        left = []
        if not unjudged:  # closing it failed after every table was judged on it
            context.log.error(f"the warehouse connection failed at its close: {scrub_error(error)}")
    return judged, left


def _with_failures(
    context: AssetCheckExecutionContext,
    table: TableContract,
    rules: Sequence[Rule],
    judged: list[AssetCheckResult],
    failed: Mapping[str, Exception],
) -> list[AssetCheckResult]:
    """The table's results, and a failure with the error for each rule an error left unjudged."""
    if table.name not in failed:
        return judged
    verdict = Verdict(False, f"the check could not run: {scrub_error(failed[table.name])}")
    context.log.error(f"{table.connector}.{table.name}: {verdict.summary}")
    done = {result.check_name for result in judged}
    digest = incremental.contract_digest(table)
    return judged + [
        _result(table, r, verdict, "", digest) for r in rules if r.check_name not in done
    ]


def _inputs(
    context: AssetCheckExecutionContext,
    chosen: Sequence[tuple[TableContract, Sequence[Rule]]],
    config: ConnectorConfig | None,
    spent: dict[AssetKey, float],
) -> tuple[dict[str, tuple[Any, dict[str, Any]]], dict[str, Exception]]:
    """Per table, what the rules need from outside the warehouse, or the error reading it."""
    known: dict[str, tuple[Any, dict[str, Any]]] = {}
    failed: dict[str, Exception] = {}
    for table, rules in chosen:
        clock = time.monotonic()
        try:
            known[table.name] = (
                fivetran_columns(table, rules, config),
                recorded_facts(context, table, rules),
            )
        except Exception as error:
            failed[table.name] = error
        spent[fivetran_key(table.connector, table.name)] = time.monotonic() - clock
    return known, failed


def _audit(
    context: AssetCheckExecutionContext,
    table: TableContract,
    selected: Sequence[Rule],
    warehouse: Warehouse,
    version: str,
    fivetran: dict[str, Mapping[str, Any]] | None,
    known: Mapping[str, Any],
) -> Iterator[AssetCheckResult]:
    """Freeze the landed table as `version` and judge the rules on it; prune old snapshots."""
    key = fivetran_key(table.connector, table.name)
    try:
        audited: TableContract | Exception = publish.snapshot(warehouse, table, version)
    except Exception as error:  # fail closed: nothing frozen means nothing audited
        audited = RuntimeError(f"could not snapshot the landed table for audit: {error}")
    state_or_error = (
        audited
        if isinstance(audited, Exception)
        else table_state(audited, selected, warehouse, fivetran)
    )
    if isinstance(state_or_error, TableState):
        state_or_error = replace(state_or_error, **known)
    subject = table if isinstance(audited, Exception) else audited
    plan = None
    if isinstance(state_or_error, TableState) and not isinstance(audited, Exception):
        plan = audit_plan(context.instance, key, audited, selected, state_or_error, warehouse)
    try:
        yield from evaluate(subject, selected, warehouse, state_or_error, version, plan)
    finally:
        incremental.release(warehouse, plan)
    if not isinstance(audited, Exception):
        publish.prune(warehouse, table)


def recorded_facts(
    context: AssetCheckExecutionContext, table: TableContract, selected: Sequence[Rule]
) -> dict[str, Any]:
    """What the rules need from Dagster's records: the PII scan's history, the last sync."""
    key = fivetran_key(table.connector, table.name)
    known: dict[str, Any] = {}
    if any(r.family in ("pii", "pii_scan") for r in selected):  # seed, last passing scan
        scan = AssetCheckKey(key, pii_scan.RULE.check_name)
        known["pii_history"] = scan_history.read(context.instance, scan, context.run.run_id)
    if any(r.family == "freshness" for r in selected):
        known["last_sync"] = freshness.last_successful_sync(context.instance, key)
    return known


def fivetran_columns(
    table: TableContract, rules: Sequence[Rule], config: ConnectorConfig | None
) -> dict[str, Mapping[str, Any]] | None:
    """Fivetran's column config for the table when a rule needs it; None if it cannot be read."""
    if config is None or not any(r.needs_fivetran_config for r in rules):
        return None
    try:
        return config.columns(table.name)
    except Exception:  # the config rule fails on None; the others judge the data alone
        return None


def audit_plan(
    instance: DagsterInstance,
    key: AssetKey,
    table: TableContract,
    rules: Sequence[Rule],
    state: TableState,
    warehouse: Warehouse,
) -> incremental.Plan:
    """Which rules judge only the rows synced since they last passed; all rows if that is unclear."""
    if why := incremental.too_small(state):  # no history to read
        return incremental.whole(table, state, why)
    try:
        previous = incremental.previous_results(instance, key, rules, table)
        return incremental.plan(table, rules, state, warehouse, previous)
    except Exception as error:  # a full audit is always a correct one
        return incremental.whole(table, state, f"could not plan a delta: {scrub_error(error)}")


def table_state(
    table: TableContract,
    rules: Sequence[Rule],
    warehouse: Warehouse,
    fivetran: dict[str, Mapping[str, Any]] | None = None,
) -> TableState | Exception:
    """Columns and size estimate of the landed table, with Fivetran's column config if read."""
    try:
        landed = warehouse.landed_columns(*table.relation)
        estimate = warehouse.row_estimate(*table.relation)
    except Exception as error:  # fail closed: an unreadable table fails every rule
        return error
    # Both warehouses resolve quoted names case-insensitively here: key the columns the way the
    # contract spells them, so a "MixedCase" column is found; report case-only renames.
    spelled = {c.name.lower(): c.name for c in table.columns}
    columns = {spelled.get(name.lower(), name.lower()): kind for name, kind in landed.items()}
    renamed = {
        spelled[name.lower()]: name
        for name in landed
        if name.lower() in spelled and name != _landed_spelling(spelled[name.lower()], warehouse)
    }
    return TableState(
        columns=columns,
        row_estimate=estimate,
        fivetran_columns=fivetran,
        pii_history=scan_history.unseeded(),
        renamed=renamed,
    )


def _landed_spelling(name: str, warehouse: Warehouse) -> str:
    """How Fivetran lands a contract column name: upper case on Snowflake (unquoted), as is else."""
    return name.upper() if warehouse.dialect == "snowflake" else name


def evaluate(
    table: TableContract,
    rules: Sequence[Rule],
    warehouse: Warehouse,
    state: TableState | Exception | None = None,
    version: str | None = None,
    plan: incremental.Plan | None = None,
) -> Iterator[AssetCheckResult]:
    """Judge every rule; a rule that cannot run fails with its error, never passes."""
    if state is None:
        state = table_state(table, rules, warehouse)
    digest = plan.contract if plan else incremental.contract_digest(table)  # once per table
    if isinstance(state, Exception):
        for rule in rules:
            yield _result(
                table,
                rule,
                Verdict(False, f"cannot read the table: {scrub_error(state)}"),
                "",
                digest,
                version,
            )
        return
    # Rules reading the same relation with the same delta share one profiling query; rules the
    # plan's counts over every row answer read nothing more.
    groups: dict[tuple, list[Rule]] = {}
    judged: dict[str, tuple[Verdict, str]] = {}
    for rule in rules:
        if plan and plan.counts and rule.from_facts:
            facts = rule.from_facts(plan.counts, state)
            verdict = _judge(table, rule, state, warehouse, facts)
            judged[rule.check_name] = (verdict, plan.counts_sql)
            continue
        subject = plan.subject(rule, table) if plan else table
        delta = plan.deltas.get(rule.check_name) if plan else None
        groups.setdefault((subject.relation, delta and delta.since), []).append(rule)
    for group in groups.values():
        subject = plan.subject(group[0], table) if plan else table
        seen = plan.state(group[0], table, state) if plan else state
        profiles, sql = _profiles(subject, group, seen, warehouse)
        for rule in group:  # each with its own state: its delta carries its last result
            own = plan.state(rule, table, state) if plan else state
            verdict = _judge(subject, rule, own, warehouse, profiles[rule.check_name])
            judged[rule.check_name] = (verdict, sql.get(rule.check_name, ""))
    for rule in rules:
        verdict, sql = judged[rule.check_name]
        read_every_row = verdict.metadata.pop(incremental.READ_EVERY_ROW, None)
        audit = plan.record(rule, read_every_row) if plan else None
        yield _result(table, rule, verdict, sql, digest, version, audit)


def _judge(
    table: TableContract,
    rule: Rule,
    state: TableState,
    warehouse: Warehouse,
    profile: Mapping[str, Any] | Exception,
) -> Verdict:
    if isinstance(profile, Exception):
        return Verdict(False, f"profiling query failed: {scrub_error(profile)}")
    try:
        facts = dict(profile)
        if rule.followup:
            facts.update(rule.followup(table, state, warehouse, facts))
        return rule.judge(table, state, facts)
    except Exception as error:
        return Verdict(False, f"rule could not run: {scrub_error(error)}")


def _profiles(
    table: TableContract, rules: Sequence[Rule], state: TableState, warehouse: Warehouse
) -> tuple[dict[str, Mapping[str, Any] | Exception], dict[str, str]]:
    """One query for all rules; if it fails, one query per rule so only the broken rule fails."""
    wanted = {rule.check_name: rule.metrics(table, state, warehouse.dialect) for rule in rules}
    combined = {
        f"{name}/{metric}": expr for name, exprs in wanted.items() for metric, expr in exprs.items()
    }
    try:
        values, sql = run_profile(warehouse, table, combined)
        return (
            {name: {m: values[f"{name}/{m}"] for m in exprs} for name, exprs in wanted.items()},
            {name: sql for name, exprs in wanted.items() if exprs},
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


def _result(
    table: TableContract,
    rule: Rule,
    verdict: Verdict,
    sql: str,
    digest: str,
    version: str | None = None,
    audit: dict[str, Any] | None = None,
) -> AssetCheckResult:
    description = verdict.summary
    if audit and audit["scope"] == incremental.SINCE_LAST:
        description += (
            f" [judged the {audit['rows_judged']:,} rows synced since {audit['since']}; the other "
            f"{audit['rows'] - audit['rows_judged']:,} passed before]"
        )
    if not verdict.passed:
        description += f" (owner: {table.owner})"
    metadata: dict[str, Any] = {
        "owner": table.owner,
        "contract": _shown(table.file),
        CONTRACT_DIGEST: digest,
    }
    if version:
        metadata[AUDITED_VERSION] = version
    if audit:
        metadata[incremental.AUDIT] = MetadataValue.json(audit)
    sql = verdict.metadata.get("sql") or sql  # a rule's own queries, else the shared profile
    for name, value in verdict.metadata.items():
        if name == "sql":
            continue
        if isinstance(value, str) and value.startswith("| "):
            metadata[name] = MetadataValue.md(value)
        elif isinstance(value, dict | list):
            metadata[name] = MetadataValue.json(value)
        elif value is not None:
            metadata[name] = value
    if sql:
        metadata["sql"] = MetadataValue.md(f"```sql\n{sql}\n```")
    return AssetCheckResult(
        asset_key=fivetran_key(table.connector, table.name),
        check_name=rule.check_name,
        passed=verdict.passed,
        severity=AssetCheckSeverity.ERROR
        if rule.severity(table) == "error"
        else AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def _shown(path: Path | None) -> str:
    """A contract's path relative to the repo when it lives there, so no local path leaks."""
    if path is None:
        return ""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def safe_name(name: str) -> str:
    """A name Dagster accepts for an op or check, from any connector or table name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)
