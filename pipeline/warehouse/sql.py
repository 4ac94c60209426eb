"""SQL built once with sqlglot and rendered for DuckDB or Snowflake, identifiers always quoted."""

from sqlglot import exp


def identifier(name: str, dialect: str) -> exp.Identifier:
    # Fivetran lands Snowflake objects with upper-case unquoted names; contracts use lower case.
    return exp.to_identifier(name.upper() if dialect == "snowflake" else name, quoted=True)


def table_ref(schema: str, table: str, dialect: str) -> exp.Table:
    return exp.Table(this=identifier(table, dialect), db=identifier(schema, dialect))


def column(name: str, dialect: str) -> exp.Column:
    return exp.Column(this=identifier(name, dialect))


def literal(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def columns_query(schema: str, table: str, dialect: str) -> str:
    def fold(value: str) -> str:
        return value.upper() if dialect == "snowflake" else value

    query = (
        exp.select("column_name", "data_type")
        .from_("information_schema.columns")
        .where(exp.column("table_schema").eq(literal(fold(schema))))
        .where(exp.column("table_name").eq(literal(fold(table))))
        .order_by("ordinal_position")
    )
    return query.sql(dialect=dialect)


def contains_match(value: exp.Expression, pattern: str, dialect: str) -> exp.Expression:
    """True when the pattern occurs anywhere in the value (Snowflake's REGEXP_LIKE is anchored)."""
    if dialect == "snowflake":
        return exp.GT(
            this=exp.Anonymous(this="REGEXP_INSTR", expressions=[value, literal(pattern)]),
            expression=exp.Literal.number(0),
        )
    return exp.Anonymous(this="regexp_matches", expressions=[value, literal(pattern)])


def full_match(value: exp.Expression, pattern: str, dialect: str) -> exp.Expression:
    """True when the whole value matches the pattern, anchored explicitly as ^(pattern)$.

    Snowflake's REGEXP_LIKE anchors implicitly; spelled out, a top-level alternation such as
    `a|b` means the same on every engine, and the dialect check can verify it.
    """
    name = "REGEXP_LIKE" if dialect == "snowflake" else "regexp_full_match"
    return exp.Anonymous(this=name, expressions=[value, literal(f"^({pattern})$")])


def in_sample(
    keys: exp.Expression | list[exp.Expression], rate: float, dialect: str, seed: int = 0
) -> exp.Expression:
    """Hash sample of about `rate` of the rows, decided by the given key(s) and the seed."""
    keys = keys if isinstance(keys, list) else [keys]
    hashed = exp.Anonymous(
        this="HASH" if dialect == "snowflake" else "hash",
        expressions=[*keys, exp.Literal.number(seed)],
    )
    bucket = exp.Mod(this=exp.Abs(this=hashed), expression=exp.Literal.number(10_000))
    return exp.LT(this=bucket, expression=exp.Literal.number(max(1, round(rate * 10_000))))


def only_in_sample(
    condition: exp.Expression,
    keys: exp.Expression | list[exp.Expression],
    rate: float,
    dialect: str,
    seed: int = 0,
    also: exp.Expression | None = None,
) -> exp.Expression:
    """The condition, tested only on sampled rows (and rows where `also` holds): a CASE, so the
    engine skips the rest (AND may not)."""
    if rate >= 1:
        return condition
    scope = in_sample(keys, rate, dialect, seed)
    if also is not None:
        scope = exp.or_(also, scope)
    return exp.Case(ifs=[exp.If(this=scope, true=condition)], default=exp.false())


def count_where(condition: exp.Expression) -> exp.Expression:
    """COUNT of rows where the condition holds, as one aggregate of the profiling pass."""
    return exp.Sum(
        this=exp.Case(
            ifs=[exp.If(this=condition, true=exp.Literal.number(1))], default=exp.Literal.number(0)
        )
    )


def row_estimate_query(schema: str, table: str, dialect: str) -> str:
    if dialect == "snowflake":
        query = (
            exp.select("row_count")
            .from_("information_schema.tables")
            .where(exp.column("table_schema").eq(literal(schema.upper())))
            .where(exp.column("table_name").eq(literal(table.upper())))
        )
    else:
        query = (
            exp.select(exp.column("estimated_size").as_("row_count"))
            .from_("duckdb_tables()")
            .where(exp.column("schema_name").eq(literal(schema)))
            .where(exp.column("table_name").eq(literal(table)))
        )
    return query.sql(dialect=dialect)


def row_count_query(schema: str, table: str, dialect: str) -> str:
    """Exact row count (Snowflake and DuckDB answer it from table metadata, without a scan)."""
    count = exp.Count(this=exp.Star()).as_("row_count")
    return exp.select(count).from_(table_ref(schema, table, dialect)).sql(dialect=dialect)
