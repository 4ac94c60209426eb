"""Fivetran row semantics: soft-deleted rows are not data, and blank text is not a value."""

from sqlglot import exp

from pipeline.checks.rule import TableState
from pipeline.contract import ColumnContract
from pipeline.warehouse.sql import column, literal

DELETED = "_fivetran_deleted"
WHITESPACE = " \t\n\r"


def live(state: TableState, dialect: str, alias: str | None = None) -> exp.Expression | None:
    """True for rows Fivetran has not soft-deleted; None when the table has no _fivetran_deleted."""
    if DELETED not in state.columns:
        return None
    flag = column(DELETED, dialect)
    if alias:
        flag.set("table", exp.to_identifier(alias))
    return exp.Not(this=exp.Coalesce(this=flag, expressions=[exp.false()]))


def count_live(condition: exp.Expression | None, state: TableState, dialect: str) -> exp.Expression:
    """Live rows where the condition holds (every live row when it is None), in the profile."""
    alive = live(state, dialect)
    parts = [c for c in (alive, condition) if c is not None]
    if not parts:
        return exp.Count(this=exp.Star())
    return _count(exp.and_(*parts) if len(parts) > 1 else parts[0])


def _count(condition: exp.Expression) -> exp.Expression:
    """COUNT of rows where the condition holds: 0, not NULL, on an empty table."""
    return exp.Count(this=exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))]))


def deleted_rows(state: TableState, dialect: str) -> exp.Expression | None:
    if DELETED not in state.columns:
        return None
    return _count(exp.EQ(this=column(DELETED, dialect), expression=exp.true()))


def trimmed(name: str, dialect: str) -> exp.Expression:
    return exp.Trim(this=column(name, dialect), expression=literal(WHITESPACE))


def _edge_is_space(name: str, dialect: str, edge: type[exp.Left] | type[exp.Right]):
    char = edge(this=column(name, dialect), expression=exp.Literal.number(1))
    return exp.In(this=char, expressions=[literal(c) for c in WHITESPACE])


def is_blank(name: str, dialect: str) -> exp.Expression:
    """'' or whitespace only. TRIM copies every value (measured 9x a scan on long text), so it
    runs only where the first character sorts below '!' (whitespace does, in binary order);
    CASE makes the engine skip it for the other values."""
    col = column(name, dialect)
    empty = exp.EQ(this=col, expression=literal(""))
    maybe = exp.LT(this=col.copy(), expression=literal("!"))
    only_space = exp.EQ(this=trimmed(name, dialect), expression=literal(""))
    return exp.Case(
        ifs=[exp.If(this=empty, true=exp.true()), exp.If(this=maybe, true=only_space)],
        default=exp.false(),
    )


def is_padded(name: str, dialect: str) -> exp.Expression:
    """Leading or trailing whitespace: exactly when the value differs from its TRIM, without one."""
    return exp.or_(
        _edge_is_space(name, dialect, exp.Left), _edge_is_space(name, dialect, exp.Right)
    )


def is_missing(contract: ColumnContract | None, name: str, state: TableState, dialect: str):
    """Null, or for a text column that treats blanks as missing, '' and whitespace only."""
    null = exp.Is(this=column(name, dialect), expression=exp.Null())
    if contract is not None and contract.blank_is_missing and is_text(state, name):
        return exp.or_(null, is_blank(name, dialect))
    return null


def is_text(state: TableState, name: str) -> bool:
    kind = state.columns.get(name, "")
    return kind.startswith(("VARCHAR", "TEXT", "STRING", "CHAR"))
