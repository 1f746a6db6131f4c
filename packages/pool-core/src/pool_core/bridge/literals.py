"""SQL literals for a bridge: DDL values and client-side composed SQL without the native driver."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

__all__ = [
    "ComposeSqlMixin",
    "MySQLQuoteValueMixin",
    "QuoteValueMixin",
    "compose_sql",
    "literal",
    "pg_literal",
]


def literal(value: Any) -> str:
    """*value* as a standard SQL literal (for DDL, where no parameters bind)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "X'" + bytes(value).hex() + "'"
    if isinstance(value, datetime.datetime):
        return "'" + value.isoformat(sep=" ") + "'"
    if isinstance(value, (datetime.date, datetime.time)):
        return "'" + value.isoformat() + "'"
    if isinstance(value, uuid.UUID):
        value = str(value)
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(literal(v) for v in value) + ")"
    return "'" + str(value).replace("'", "''") + "'"


def pg_literal(value: Any) -> str:
    """*value* as a PostgreSQL literal (bytea as ``'\\x…'::bytea``, lists as arrays)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "'\\x" + bytes(value).hex() + "'::bytea"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(pg_literal(v) for v in value) + "]"
    return literal(value)


def compose_sql(sql: str, params: Any, quote: Any = None) -> str:
    """Merge *params* into *sql* (``%s`` / ``%(name)s``) as literals."""
    if params is None:
        return sql
    quote = quote or literal
    if isinstance(params, dict):
        return sql % {k: quote(v) for k, v in params.items()}
    return sql % tuple(quote(v) for v in params)


class ComposeSqlMixin:
    """DatabaseOperations: merge parameters client-side without psycopg."""

    def compose_sql(self, sql: str, params: Any) -> str:
        return compose_sql(sql, params, pg_literal)


class QuoteValueMixin:
    """BaseDatabaseSchemaEditor: quote DDL values without the native driver."""

    def quote_value(self, value: Any) -> str:
        return pg_literal(value)


class MySQLQuoteValueMixin:
    """MySQL's schema editor: quote values (backslashes escaped) without MySQLdb."""

    def quote_value(self, value: Any) -> str:
        if isinstance(value, str):
            return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
        if isinstance(value, bool):
            return "1" if value else "0"
        return literal(value)
