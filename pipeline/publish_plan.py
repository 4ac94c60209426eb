"""Which of a publish step's verified tables publish, decided before any of them does.

A step holds a connector's tables, and those of every connector its blocking foreign keys link
to. A table publishes when no operator holds it, when Looker will read, beside it, the parent
versions its foreign keys resolve in, and when it leaves no child that stays behind pointing at
rows it drops. Refusing one table changes what the others would be published beside, so the
decision repeats until no more tables are refused.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dagster import Failure

from pipeline import gate, publish
from pipeline.contract import TableContract
from pipeline.publish_foreign_keys import Stamps, orphans_between, recheck
from pipeline.warehouse import Warehouse

Id = tuple[str, str]  # a table's (connector, name)


class Parent(NamedTuple):
    """A table a child's blocking foreign keys reference, as its checks left it."""

    table: TableContract
    audited: str | None  # its latest audit, when every blocking check passed on it
    held_back: str = ""  # else the checks that did not pass


@dataclass
class Step:
    """What one publish step knows of its tables before it decides."""

    warehouse: Warehouse
    versions: Mapping[Id, str]  # table -> the audited version its blocking checks passed on
    needs: Mapping[Id, Sequence[Parent]]  # table -> the parents its foreign keys gate on
    checked: Mapping[Id, Mapping[str, Any]]  # table -> its foreign key check's findings
    children: Mapping[Id, Sequence[TableContract]]  # table -> gated children in the step
    ledgers: dict[Id, publish.Ledger] = field(default_factory=dict)
    stamps: Stamps = field(default_factory=dict)
    rechecked: dict[tuple, tuple[dict[str, str], list[str]]] = field(default_factory=dict)
    orphaned: dict[tuple, list[str]] = field(default_factory=dict)

    def ledger(self, table: TableContract) -> publish.Ledger:
        """The table's ledger before the step publishes (`plan` reads the step's at once)."""
        if table.id not in self.ledgers:
            self.ledgers[table.id] = publish.ledger(self.warehouse, table)
        return self.ledgers[table.id]

    def showing(self, table: TableContract) -> str | None:
        """The version Looker reads before the step publishes."""
        return self.ledger(table).live


def plan(
    step: Step, ready: Sequence[TableContract]
) -> tuple[dict[Id, dict[str, str]], dict[Id, Failure], dict[Id, Exception]]:
    """The tables that publish (with how their foreign keys were verified), those refused, and
    those whose verification failed."""
    involved = [
        *ready,
        *(parent.table for table in ready for parent in step.needs[table.id]),
        *(child for table in ready for child in step.children.get(table.id, ())),
    ]
    step.ledgers |= publish.ledgers(step.warehouse, involved)  # one read for the whole step
    pending = {table.id: step.versions[table.id] for table in ready}
    verified: dict[Id, dict[str, str]] = {}
    refusals: dict[Id, Failure] = {}
    failed: dict[Id, Exception] = {}
    changed = True
    while changed:
        changed = False
        for table in ready:
            if table.id not in pending:
                continue
            try:
                verified[table.id], problems = _judge(step, table, pending)
            except Exception as error:  # a check that cannot run refuses, like one that fails
                failed[table.id], problems = error, []
            if problems:
                refusals[table.id] = refused(table, problems)
            if problems or table.id in failed:
                del pending[table.id]
                changed = True
    return {table: verified[table] for table in pending}, refusals, failed


def _judge(
    step: Step, table: TableContract, pending: Mapping[Id, str]
) -> tuple[dict[str, str], list[str]]:
    held = step.ledger(table).held_since
    if held:
        return {}, [publish.held_problem(table, held)]
    others = {other: v for other, v in pending.items() if other != table.id}
    # Its keys must resolve in each parent as Looker reads it once the step is done, whichever
    # audited version that is: a parent held back (or held) keeps its published version.
    afters = [(parent, _after(step, parent.table, others)) for parent in step.needs[table.id]]
    problems = [_unread(parent) for parent, after in afters if after is None]
    if problems:
        return {}, problems
    version = step.versions[table.id]
    reads = [(parent.table, after) for parent, after in afters]
    hints = {parent.table.id: _hint(step, parent, after) for parent, after in afters}
    key = (table.id, version, tuple((*p.id, v) for p, v in reads))
    if key not in step.rechecked:
        step.rechecked[key] = recheck(
            step.warehouse, table, version, reads, step.checked[table.id], step.stamps, hints
        )
    verified, problems = step.rechecked[key]
    shown = step.showing(table)
    if shown is not None and shown >= version:  # nothing changes for its children
        return verified, problems
    for child in step.children.get(table.id, ()):
        child_version = step.showing(child)
        if child.id in others or child_version is None:
            continue
        key = (child.id, child_version, table.id, version)
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


def _after(step: Step, parent: TableContract, pending: Mapping[Id, str]) -> str | None:
    """The parent version Looker reads once the step is done (a publish never goes back)."""
    return max((v for v in (step.showing(parent), pending.get(parent.id)) if v), default=None)


def _unread(parent: Parent) -> str:
    """Why a parent Looker does not read yet leaves its children nothing to resolve in."""
    where = f"{parent.table.published_schema}.{parent.table.name}"
    why = f"it is held back: {parent.held_back}" if parent.audited is None else f"publish {where}"
    return (
        f"its foreign keys reference {parent.table.connector}.{parent.table.name}, which Looker "
        f"does not read yet ({where} shows nothing): {why}"
    )


def _hint(step: Step, parent: Parent, after: str) -> str:
    """What would let a child's keys resolve in the parent version Looker reads."""
    name = f"{parent.table.connector}.{parent.table.name}"
    if parent.audited is None:
        return f"its newer rows are held back ({parent.held_back})"
    if parent.audited > after:
        held = step.ledger(parent.table).held_since
        if held:
            return f"its audited version {parent.audited} is held by an operator since {held}"
        return f"publish {name} version {parent.audited} first, or both together"
    return f"audit {name} again, then publish both"


def refused(table: TableContract, problems: list[str]) -> Failure:
    return gate.refuse(f"publish {table.published_schema}.{table.name}", problems)
