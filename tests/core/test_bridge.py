"""pool_core.bridge's pure parts: SQLSTATE classes, literals, composed SQL."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from pool_core import bridge


@pytest.mark.parametrize("state,cls", [
    ("08006", bridge.OperationalError), ("57P01", bridge.OperationalError), ("40001", bridge.OperationalError),
    ("28000", bridge.OperationalError), ("23505", bridge.IntegrityError), ("22012", bridge.DataError),
    ("42601", bridge.ProgrammingError), ("0A000", bridge.NotSupportedError), ("25P02", bridge.InternalError),
    ("99999", bridge.DatabaseError), (None, bridge.DatabaseError),
])
def test_sqlstate_classes(state, cls):
    assert bridge.error_class(state) is cls


def test_every_db_api_error_name_is_on_database():
    from django.db import utils

    for name in ("DataError", "OperationalError", "IntegrityError", "InternalError", "ProgrammingError",
                 "NotSupportedError", "DatabaseError", "InterfaceError", "Error"):
        assert issubclass(getattr(bridge.Database, name), bridge.Error)
        assert hasattr(utils, name)


def test_literals():
    assert bridge.literal(None) == "NULL"
    assert bridge.literal(True) == "TRUE"
    assert bridge.literal(decimal.Decimal("1.50")) == "1.50"
    assert bridge.literal("it's") == "'it''s'"
    assert bridge.literal(datetime.datetime(2024, 1, 2, 3, 4, 5)) == "'2024-01-02 03:04:05'"
    assert bridge.literal(datetime.date(2024, 1, 2)) == "'2024-01-02'"
    u = uuid.UUID(int=1)
    assert bridge.literal(u) == f"'{u}'"
    assert bridge.pg_literal(b"ab") == "'\\x6162'::bytea"
    assert bridge.pg_literal([1, "a"]) == "ARRAY[1, 'a']"


def test_compose_sql():
    assert bridge.compose_sql("SET ROLE %s", ["x'y"]) == "SET ROLE 'x''y'"
    assert bridge.compose_sql("SELECT %(a)s, %(b)s", {"a": 1, "b": None}) == "SELECT 1, NULL"
    assert bridge.compose_sql("SELECT 1", None) == "SELECT 1"


def test_mysql_quote_value_escapes_backslashes():
    assert bridge.MySQLQuoteValueMixin().quote_value("a\\b'c") == "'a\\\\b''c'"
    assert bridge.MySQLQuoteValueMixin().quote_value(False) == "0"
