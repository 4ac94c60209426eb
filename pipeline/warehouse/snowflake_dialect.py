"""What real Snowflake would reject, found before a statement runs (fakesnow runs on DuckDB).

Each statement is parsed with sqlglot's Snowflake dialect, its unquoted identifiers are held to
Snowflake's reserved words, and each regex to what Snowflake's POSIX engine supports.
"""

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

# Snowflake's reserved and limited keywords (docs.snowflake.com, "Reserved & limited keywords").
RESERVED_WORDS = """
ACCOUNT ALL ALTER AND ANY AS ASOF BETWEEN BY CASE CAST CHECK COLUMN CONNECT CONNECTION CONSTRAINT
CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DATABASE DELETE
DISTINCT DROP ELSE EXISTS FALSE FOLLOWING FOR FROM FULL GRANT GROUP GSCLUSTER HAVING ILIKE IN
INCREMENT INNER INSERT INTERSECT INTO IS ISSUE JOIN LATERAL LEFT LIKE LOCALTIME LOCALTIMESTAMP
MATCH_CONDITION MINUS NATURAL NOT NULL OF ON OR ORDER ORGANIZATION QUALIFY REGEXP REVOKE RIGHT
RLIKE ROW ROWS SAMPLE SCHEMA SELECT SET SOME START TABLE TABLESAMPLE THEN TO TRIGGER TRUE
TRY_CAST UNION UNIQUE UPDATE USING VALUES VIEW WHEN WHENEVER WHERE WINDOW WITH
"""
RESERVED = frozenset(RESERVED_WORDS.split())


class SnowflakeDialectError(ValueError):
    """A statement real Snowflake would reject or read differently."""


def check_statement(sql: str) -> None:
    """Raise SnowflakeDialectError naming every problem of the statement; None when it is fine."""
    problems = statement_problems(sql)
    if problems:
        raise SnowflakeDialectError(
            "Snowflake would reject or misread this statement: " + "; ".join(problems)
        )


def statement_problems(sql: str) -> list[str]:
    try:
        tree = sqlglot.parse_one(sql, read="snowflake")
    except ParseError as error:
        return [f"sqlglot's Snowflake dialect cannot parse it ({error})"]
    problems = [
        f"unquoted identifier {ident.name} is a reserved word in Snowflake"
        for ident in tree.find_all(exp.Identifier)
        if not ident.quoted and ident.name.upper() in RESERVED
    ]
    for node in tree.find_all(exp.Func):
        if not type(node).__name__.startswith("Regexp"):
            continue
        pattern = node.args.get("expression")
        name = node.sql_name()
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            problems.append(f"{name} pattern is not a string literal, so it cannot be checked")
            continue
        whole = bool(node.args.get("full_match")) or isinstance(node, exp.RegexpLike)
        problems += [
            f"{name} pattern {pattern.this!r}: {p}" for p in regex_problems(pattern.this, whole)
        ]
    return problems


def regex_problems(pattern: str, whole_string: bool = False) -> list[str]:
    """What Snowflake's POSIX ERE engine lacks in `pattern` (and, for REGEXP_LIKE, which matches
    the whole string, a missing explicit `^(...)$`)."""
    problems: list[str] = []
    depth, i, top_level_alternation = 0, 0, False
    while i < len(pattern):
        c, nxt = pattern[i], pattern[i + 1 : i + 2]
        if c == "\\":
            problems += _escape_problem(nxt)
            i += 2
            continue
        if c == "[":
            i = _class_end(pattern, i)
            continue
        if c == "(" and nxt == "?":
            problems.append(_group_problem(pattern[i : i + 4]))
            depth, i = depth + 1, i + 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            top_level_alternation = True
        elif c in "*+?}" and nxt == "?":
            problems.append(f"lazy quantifier {c}? (POSIX quantifiers are greedy only)")
            i += 2
            continue
        elif c in "*+?}" and nxt == "+":
            problems.append(f"possessive quantifier {c}+ (not in POSIX)")
        i += 1
    if whole_string and not (
        pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$")
        and not top_level_alternation
    ):  # fmt: skip
        problems.append(
            "matches the whole string only implicitly; write it as ^(...)$ so every engine "
            "reads it the same way (a top-level | is anchored per alternative otherwise)"
        )
    return problems


def anchored(pattern: str) -> str:
    """The pattern matched against the whole string, explicitly: ^(pattern)$."""
    return f"^({pattern})$"


def _escape_problem(char: str) -> list[str]:
    if char in "bB":
        return [f"\\{char} word boundary (Snowflake has none; use (^|[^A-Za-z0-9_]) instead)"]
    if char in "AZzGK":
        return [f"\\{char} (not in POSIX; use ^ or $)"]
    if char.isdigit() and char != "0":
        return [f"backreference \\{char} (not supported in a Snowflake pattern)"]
    return []


def _group_problem(opening: str) -> str:
    kinds = {"(?=": "lookahead", "(?!": "negative lookahead", "(?<=": "lookbehind",
             "(?<!": "negative lookbehind", "(?:": "non-capturing group"}  # fmt: skip
    for start, kind in sorted(kinds.items(), key=lambda k: -len(k[0])):
        if opening.startswith(start):
            return f"{kind} {start} (not in POSIX)"
    return f"group extension {opening[:3]} (inline flags, named groups: not in POSIX)"


def _class_end(pattern: str, start: int) -> int:
    """Index just past the bracket expression opening at `start` (a leading ] is literal)."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1
