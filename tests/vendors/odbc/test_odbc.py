"""pool_odbc specifics: connection-string forms, configuration errors, Python types."""

from __future__ import annotations

import datetime
import decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from tests.conftest import BRIDGES, ENGINES

pytestmark = pytest.mark.skipif(not BRIDGES, reason="ODBC engines run in the POOL_TEST_BRIDGES=1 pass")


@pytest.fixture(params=["odbc_postgresql", "odbc_mysql"])
def odbc(request):
    from tests.conftest import _fresh

    yield from _fresh(next(e for e in ENGINES if e.label == request.param))


def test_unknown_odbc_driver_names_alias_and_option(odbc):
    alias = odbc.make_alias(OPTIONS={"DRIVER": "No Such ODBC Driver"})
    with pytest.raises(ImproperlyConfigured) as info:
        connections[alias].ensure_connection()
    assert repr(alias) in str(info.value) and "OPTIONS['DRIVER']" in str(info.value)


def test_unknown_dsn_names_alias_and_option(odbc):
    alias = odbc.make_alias(OPTIONS={"DSN": "no_such_dsn"})
    with pytest.raises(ImproperlyConfigured) as info:
        connections[alias].ensure_connection()
    assert repr(alias) in str(info.value) and "OPTIONS['DSN']" in str(info.value)


def test_full_connection_string(odbc):
    s = odbc.server
    if odbc.vendor == "postgresql":
        text = (f"DRIVER={{PostgreSQL Unicode}};SERVER={s.host};PORT={s.port};DATABASE={odbc.dbname};"
                f"UID={s.user};PWD={s.password};UseServerSidePrepare=0")
    else:
        text = (f"DRIVER={{MariaDB Unicode}};SERVER={s.host};PORT={s.port};DATABASE={odbc.dbname};"
                f"UID={s.user};PWD={s.password}")
    alias = odbc.make_alias(OPTIONS={"CONNECTION_STRING": text}, NAME="ignored_by_connection_string")
    assert odbc.backend_id(alias) > 0


def test_dsn_from_odbc_ini(odbc, tmp_path, monkeypatch):
    s = odbc.server
    driver = "PostgreSQL Unicode" if odbc.vendor == "postgresql" else "MariaDB Unicode"
    (tmp_path / "odbc.ini").write_text(
        f"[pool_test_dsn_{odbc.vendor}]\nDriver={driver}\nServer={s.host}\nPort={s.port}\n")
    monkeypatch.setenv("ODBCINI", str(tmp_path / "odbc.ini"))
    alias = odbc.make_alias(OPTIONS={"DSN": f"pool_test_dsn_{odbc.vendor}"})
    assert odbc.backend_id(alias) > 0


def test_python_types_come_back(odbc):
    alias = odbc.make_alias()
    pg = odbc.vendor == "postgresql"
    sql = ("SELECT CAST(%s AS DATE), CAST(%s AS DECIMAL(10,3)), CAST(%s AS "
           + ("TEXT" if pg else "CHAR") + ")")
    day, amount = datetime.date(2024, 2, 29), decimal.Decimal("12.345")
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [day, amount, "h\u00e9llo %"])
        row = cursor.fetchone()
    assert row[0] == day and type(row[0]) is datetime.date
    assert row[1] == amount and type(row[1]) is decimal.Decimal
    assert row[2] == "h\u00e9llo %"
