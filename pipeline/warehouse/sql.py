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
