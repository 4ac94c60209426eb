"""Classified PII arrives as the contract says: hashed, blocked or allowed; Fivetran agrees."""

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from pipeline.checks.patterns import HASH_SHAPE
from pipeline.checks.pii_scan import history, sample_keys, sample_rate
from pipeline.checks.redact import redact
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.contract import ColumnContract, TableContract
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import column, count_where, full_match, only_in_sample, table_ref

SAMPLES = 3
EXPECTED_HASH = "SHA-256: 64 hex or 44 base64 characters"
HEX_DIGESTS = {32: "MD5", 40: "SHA-1", 56: "SHA-224", 96: "SHA-384", 128: "SHA-512"}
BASE64_DIGESTS = {24: "MD5", 28: "SHA-1", 88: "SHA-512"}


def shape(value: object) -> str:
    """What a non-hash value looks like, without repeating any of it."""
    text = str(value)
    n = len(text)
    if n and all(c in "0123456789abcdefABCDEF" for c in text):
        digest = HEX_DIGESTS.get(n)
        return f"{n} hex characters" + (f", looks like {digest}" if digest else "")
    if n and text.rstrip("=").replace("+", "").replace("/", "").isalnum() and n % 4 == 0:
        digest = BASE64_DIGESTS.get(n)
        return f"{n} base64 characters" + (f", looks like {digest}" if digest else "")
    if "@" in text:
        return f"{n} characters with an '@', looks like an email"
    if n and all(c.isdigit() or c in " +-().-" for c in text):
        return f"{n} digits and separators, looks like a phone number"
    return f"{n} characters of text"


def _governed(table: TableContract) -> list[ColumnContract]:
    return [c for c in table.columns if c.pii_handling in ("hashed", "blocked")]


def _not_hashed(
    name: str,
    dialect: str,
    rate: float = 1.0,
    keys: list[exp.Expression] | None = None,
    seed: int = 0,
) -> exp.Expression:
    """A value that is not a SHA-256 hash (64 hex, or 44 base64 chars).

    Below a rate of 1 the length is judged on every row, the full shape only on a sample:
    raw PII almost never has a hash's length, and the shape regex is what costs.
    """
    col = column(name, dialect)
    wrong_shape = exp.Not(this=full_match(col.copy(), HASH_SHAPE, dialect))
    if rate < 1:
        length = exp.Length(this=col.copy())
        wrong_length = exp.Not(
            this=exp.In(this=length, expressions=[exp.Literal.number(44), exp.Literal.number(64)])
        )
        sampled = only_in_sample(wrong_shape, keys or [col.copy()], rate, dialect, seed)
        wrong_shape = exp.or_(wrong_length, sampled)
    return exp.and_(exp.Not(this=exp.Is(this=col, expression=exp.Null())), wrong_shape)


def metrics(table: TableContract, state: TableState, dialect: str) -> dict[str, exp.Expression]:
    found: dict[str, exp.Expression] = {}
    rate = sample_rate(table, state)
    for c in _governed(table):
        if c.name not in state.columns:
            continue
        if c.pii_handling == "hashed":
            keys = sample_keys(table, state, dialect, [column(c.name, dialect)])
            seed = history(state).seed
            found[f"not_hashed:{c.name}"] = count_where(
                _not_hashed(c.name, dialect, rate, keys, seed)
            )
        else:
            found[f"present:{c.name}"] = exp.Count(this=column(c.name, dialect))
    return found


def samples(
    table: TableContract, state: TableState, warehouse: Warehouse, profile: Mapping[str, Any]
) -> dict[str, Any]:
    """A few redacted offending values, fetched only for columns that failed."""
    found: dict[str, Any] = {}
    for c in _governed(table):
        bad = profile.get(f"not_hashed:{c.name}") or profile.get(f"present:{c.name}")
        if not bad:
            continue
        condition = _not_hashed(c.name, warehouse.dialect) if c.pii_handling == "hashed" else (
            exp.Not(this=exp.Is(this=column(c.name, warehouse.dialect), expression=exp.Null()))
        )  # fmt: skip
        sql = (
            exp.select(column(c.name, warehouse.dialect).as_("value"))
            .from_(table_ref(*table.relation, warehouse.dialect))
            .where(condition)
            .limit(SAMPLES)
            .sql(warehouse.dialect)
        )
        values = [r["value"] for r in warehouse.query(sql)]
        found[f"samples:{c.name}"] = [redact(v, c.classification) for v in values]
        if c.pii_handling == "hashed":
            found[f"shapes:{c.name}"] = sorted({shape(v) for v in values})
    return found


def judge(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    problems, samples_md = [], []
    for c in _governed(table):
        if c.pii_handling == "hashed" and c.name not in state.columns:
            problems.append(f"{c.name}: hashed column missing")
            continue
        bad = int(profile.get(f"not_hashed:{c.name}") or profile.get(f"present:{c.name}") or 0)
        if bad:
            what = "values arrive though blocked"
            if c.pii_handling == "hashed":
                seen = "; ".join(profile.get(f"shapes:{c.name}") or []) or "other values"
                what = f"values are not hashes (expected {EXPECTED_HASH}; seen {seen})"
            problems.append(f"{c.name} ({c.classification}): {bad} {what}")
            samples_md += [f"| {c.name} | `{s}` |" for s in profile.get(f"samples:{c.name}", [])]
    rate = sample_rate(table, state)
    metadata: dict[str, Any] = {
        "governed_columns": {c.name: c.pii_handling for c in _governed(table)},
        "hash_check": "length and shape of every value"
        if rate >= 1
        else f"length of every value, full shape on a {rate:.2%} hash sample",
    }
    if samples_md:
        metadata["redacted_samples"] = "| column | value (redacted) |\n|---|---|\n" + "\n".join(
            samples_md
        )
    return Verdict(
        passed=not problems,
        summary="; ".join(problems) or f"{len(_governed(table))} PII columns arrive as contracted",
        metadata=metadata,
    )


def judge_config(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    if state.fivetran_columns is None:
        return Verdict(False, "Fivetran's column config for this table could not be read")
    problems = []
    for c in table.columns:
        config = state.fivetran_columns.get(c.name)
        enabled = bool(config.get("enabled", True)) if config else None
        hashed = bool(config.get("hashed", False)) if config else False
        if c.pii_handling == "blocked":
            if enabled:
                problems.append(f"{c.name}: contract blocks it, Fivetran syncs it")
        elif config is None:
            if c.pii_handling == "hashed":
                problems.append(
                    f"{c.name}: not in Fivetran's column config, cannot confirm hashing"
                )
        elif not enabled:
            problems.append(f"{c.name}: disabled in Fivetran")
        elif c.pii_handling == "hashed" and not hashed:
            problems.append(f"{c.name}: contract says hashed, Fivetran does not hash it")
    return Verdict(
        passed=not problems,
        summary="; ".join(problems) or "Fivetran's column config matches the contract",
        metadata={"fivetran_columns_compared": len(state.fivetran_columns)},
    )


RULES = (
    Rule(
        check_name="pii_arrives_as_contracted",
        family="pii",
        description="PII columns arrive hashed or blocked exactly as the contract says.",
        applies=lambda table: bool(_governed(table)),
        metrics=metrics,
        followup=samples,
        judge=judge,
        # A sampled check keeps re-sampling old rows; an exact one has read them all already.
        incremental=lambda table: "rows" if table.pii_scan == "exact" else None,
    ),
    Rule(
        check_name="fivetran_config_matches_contract",
        family="schema",
        description="Fivetran syncs, hashes and blocks the columns the way the contract says.",
        applies=lambda table: bool(table.columns),
        judge=judge_config,
        needs_fivetran_config=True,
    ),
)
