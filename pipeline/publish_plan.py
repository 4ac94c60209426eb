"""Which of a publish step's verified tables publish, decided before any of them does.

A table publishes when no operator holds it, when Looker will read, beside it, the parent versions
its foreign keys resolve in, and when it leaves no child in the step that stays behind pointing at
rows it drops. Refusing
one table changes what the others would be published beside, so the decision repeats until no
more tables are refused.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import Failure

from pipeline import gate, publish
from pipeline.contract import TableContract
from pipeline.publish_foreign_keys import Stamps, orphans_between, recheck
from pipeline.warehouse import Warehouse


@dataclass
class Step:
    """What one publish step knows of its tables before it decides."""

    warehouse: Warehouse
    versions: Mapping[str, str]  # table -> the audited version its blocking checks passed on
    needs: Mapping[str, Sequence[tuple[TableContract, str]]]  # table -> gated parents, versions
    checked: Mapping[str, Mapping[str, Any]]  # table -> its foreign key check's findings
    children: Mapping[str, Sequence[TableContract]]  # table -> gated children in its connector
    ledgers: dict[tuple[str, str], publish.Ledger] = field(default_factory=dict)
    stamps: Stamps = field(default_factory=dict)
    rechecked: dict[tuple, tuple[dict[str, str], list[str]]] = field(default_factory=dict)
    orphaned: dict[tuple, list[str]] = field(default_factory=dict)

    def ledger(self, table: TableContract) -> publish.Ledger:
        """The table's ledger before the step publishes (`plan` reads the step's at once)."""
        where = (table.connector, table.name)
        if where not in self.ledgers:
            self.ledgers[where] = publish.ledger(self.warehouse, table)
        return self.ledgers[where]

    def showing(self, table: TableContract) -> str | None:
        """The version Looker reads before the step publishes."""
        stack = self.ledger(table).stack
        return stack[-1] if stack else None


def plan(
    step: Step, ready: Sequence[TableContract]
) -> tuple[dict[str, dict[str, str]], dict[str, Failure], dict[str, Exception]]:
    """The tables that publish (with how their foreign keys were verified), those refused, and
    those whose verification failed."""
    involved = [
        *ready,
        *(parent for table in ready for parent, _ in step.needs[table.name]),
        *(child for table in ready for child in step.children.get(table.name, ())),
    ]
    step.ledgers |= publish.ledgers(step.warehouse, involved)  # one read for the whole step
    pending = {table.name: step.versions[table.name] for table in ready}
    verified: dict[str, dict[str, str]] = {}
    refusals: dict[str, Failure] = {}
    failed: dict[str, Exception] = {}
    changed = True
    while changed:
        changed = False
        for table in ready:
            if table.name not in pending:
                continue
            try:
                verified[table.name], problems = _judge(step, table, pending)
            except Exception as error:  # a check that cannot run refuses, like one that fails
                failed[table.name], problems = error, []
            if problems:
                refusals[table.name] = refused(table, problems)
            if problems or table.name in failed:
                del pending[table.name]
                changed = True
    return {name: verified[name] for name in pending}, refusals, failed


def _judge(
    step: Step, table: TableContract, pending: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    held = step.ledger(table).held_since
    if held:
        return {}, [publish.held_problem(table, held)]
    others = {name: v for name, v in pending.items() if name != table.name}
    problems = unpublished_parents(table, step.needs[table.name], step.showing, others)
    if problems:
        return {}, problems
    version = step.versions[table.name]
    reads = [(p, _after(step, table, p, others)) for p, _ in step.needs[table.name]]
    key = (table.name, version, tuple((p.connector, p.name, v) for p, v in reads))
    if key not in step.rechecked:
        step.rechecked[key] = recheck(
            step.warehouse, table, version, reads, step.checked[table.name], step.stamps
        )
    verified, problems = step.rechecked[key]
    shown = step.showing(table)
    if shown is not None and shown >= version:  # nothing changes for its children
        return verified, problems
    for child in step.children.get(table.name, ()):
        child_version = step.showing(child)
        if child.name in others or child_version is None:
            continue
        key = (child.name, child_version, table.name, version)
        if key not in step.orphaned:
            step.orphaned[key] = [
                f"{relation}: {found['orphans']} rows (e.g. {found['example']})"
                for relation, found in orphans_between(
                    step.warehouse, child, child_version, table, version
                )
            ]
        if step.orphaned[key]:
            problems = [
                *problems,
                f"its version {version} drops rows that {child.published_schema}.{child.name} "
                f"(version {child_version}, which Looker reads) still references: "
                f"{'; '.join(step.orphaned[key])}; {child.connector}.{child.name} does not "
                "publish in this step: publish them together once it passes",
            ]
    return verified, problems


def _after(
    step: Step, table: TableContract, parent: TableContract, pending: Mapping[str, str]
) -> str:
    """The parent version Looker reads once the step is done (a publish never goes back)."""
    coming = pending.get(parent.name) if parent.connector == table.connector else None
    return max(v for v in (step.showing(parent), coming) if v)


def unpublished_parents(
    table: TableContract,
    needs: Sequence[tuple[TableContract, str]],
    showing: Callable[[TableContract], str | None],
    coming: Mapping[str, str],
) -> list[str]:
    """Why Looker would not read a parent at the audited version the table needs."""
    problems = []
    for parent, version in needs:
        shown = showing(parent)
        pending = parent.connector == table.connector and coming.get(parent.name) == version
        if (shown is None or shown < version) and not pending:
            where = f"{parent.published_schema}.{parent.name}"
            problems.append(
                f"its foreign keys reference {parent.connector}.{parent.name}, whose audited "
                f"version {version} is not what Looker reads ({where} shows "
                f"{shown or 'nothing yet'}): publish {where} first"
            )
    return problems


def refused(table: TableContract, problems: list[str]) -> Failure:
    return gate.refuse(f"publish {table.published_schema}.{table.name}", problems)
