"""pool_oracle against a DB-API double of oracledb: only what needs no server.

Loading the backend, DSN forms, Django's per-connection NLS set-up, pool
hooks reading oracledb's local state, passwords. Everything else runs
against a real server in the contract suite when POOL_TEST_ORACLE_DSN is set.
"""

from __future__ import annotations

import logging

import pytest
from django.db import connections
from django.db.utils import OperationalError

import pool_core
from tests.vendors.oracle._dbapi_double import DoubleDriver

oracledb = pytest.importorskip("oracledb", reason="pool-oracle's driver oracledb is not installed")

SECRET = "0racle-s3cret"


@pytest.fixture
def double(monkeypatch):
    driver = DoubleDriver(oracledb.DatabaseError)
    monkeypatch.setattr(oracledb, "connect", driver.connect)
    aliases: list[str] = []

    def alias(**overrides):
        name = f"oracle_double_{len(aliases)}"
        s = {"ENGINE": "pool_oracle", "NAME": "FREEPDB1", "USER": "app", "PASSWORD": SECRET,
             "HOST": "db.example", "PORT": "1521", "OPTIONS": {},
             "POOL_OPTIONS": {"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 0}}
        s.update(overrides)
        connections.settings[name] = connections.configure_settings({"default": connections.settings["default"],
                                                                   name: s})[name]
        aliases.append(name)
        return name

    yield driver, alias
    for name in aliases:
        conn = getattr(connections._connections, name, None)
        if conn is not None:
            conn.close()
            delattr(connections._connections, name)
        connections.settings.pop(name, None)
    pool_core.dispose()


def test_backend_loads_and_reuses_one_physical_connection(double):
    driver, make = double
    alias = make()
    conn = connections[alias]
    assert conn.vendor == "oracle"
    conn.ensure_connection()
    first = conn.connection
    conn.close()
    conn.ensure_connection()
    assert conn.connection is first
    conn.close()
    assert len(driver.connections) == 1
    assert pool_core.stats(alias)["checkouts"] == 2


@pytest.mark.parametrize("overrides,expected", [
    ({}, "(SID=FREEPDB1)"),
    ({"OPTIONS": {"service_name": "orclpdb"}}, "(SERVICE_NAME=orclpdb)"),
    ({"HOST": "", "PORT": "", "NAME": "db.example:1521/orclpdb"}, "db.example:1521/orclpdb"),
    ({"HOST": "", "PORT": "", "NAME": "ORCL_TNS_ALIAS"}, "ORCL_TNS_ALIAS"),
], ids=["host-port-sid", "host-port-service", "easy-connect-in-name", "tns-alias"])
def test_dsn_forms(double, overrides, expected):
    driver, make = double
    alias = make(**overrides)
    connections[alias].ensure_connection()
    dsn = driver.connections[-1].kwargs["dsn"]
    assert expected in dsn
    if "PORT" not in overrides:
        assert "(HOST=db.example)" in dsn and "(PORT=1521)" in dsn
    assert driver.connections[-1].kwargs["user"] == "app"
    assert "service_name" not in driver.connections[-1].kwargs


def test_options_reach_the_driver(double):
    driver, make = double
    alias = make(OPTIONS={"threaded": True, "use_returning_into": False})
    connections[alias].ensure_connection()
    kwargs = driver.connections[-1].kwargs
    assert kwargs["threaded"] is True and "use_returning_into" not in kwargs
    assert connections[alias].features.can_return_columns_from_insert is False


def test_nls_session_settings_run_once_per_physical_connection(double):
    driver, make = double
    alias = make()
    for _ in range(3):
        connections[alias].ensure_connection()
        connections[alias].close()
    statements = driver.connections[0].statements
    assert sum("NLS_TERRITORY" in s for s in statements) == 1
    assert sum("NLS_DATE_FORMAT" in s and "TIME_ZONE = 'UTC'" in s for s in statements) == 1
    assert driver.connections[0].stmtcachesize == 20
    # A new wrapper (another thread) reusing the connection has Django's LIKE operators.
    other = connections.create_connection(alias)
    other.ensure_connection()
    assert other.operators["contains"] == connections[alias].operators["contains"]
    other.close()


def test_open_transaction_is_rolled_back_on_return_and_idle_is_not(double):
    driver, make = double
    alias = make()
    conn = connections[alias]
    conn.ensure_connection()
    conn.close()  # autocommit, nothing open
    raw = driver.connections[0]
    assert raw.rollbacks == 0
    conn.set_autocommit(False)
    with conn.cursor() as cursor:
        cursor.execute("UPDATE t SET x = 1")
    assert raw.transaction_in_progress
    conn.close()
    assert raw.rollbacks == 1 and not raw.transaction_in_progress
    assert pool_core.stats(alias)["rollbacks_on_return"] == 1


def test_unhealthy_connection_is_discarded_and_ping_replaces_dead_idle_one(double):
    driver, make = double
    alias = make()
    conn = connections[alias]
    conn.ensure_connection()
    driver.connections[0].healthy = False
    conn.close()  # is_healthy() says no: discarded, not returned
    conn.ensure_connection()
    assert len(driver.connections) == 2
    conn.close()
    driver.connections[1].healthy = False  # died while idle
    conn.ensure_connection()
    assert len(driver.connections) == 3 and pool_core.stats(alias)["pings_failed"] == 1
    conn.close()


def test_password_never_shown(double, caplog):
    driver, make = double
    alias = make(POOL_OPTIONS={"POOL_SIZE": 1, "ECHO": "debug"})
    caplog.set_level(logging.DEBUG)
    connections[alias].ensure_connection()
    connections[alias].close()
    from pool_core.registry import all_pools

    assert SECRET not in repr(all_pools()[alias]) and SECRET not in repr(pool_core.stats())
    driver.fail_with = oracledb.OperationalError("DPY-6005: cannot connect to database")
    bad = make(HOST="nowhere.example")
    with pytest.raises(OperationalError) as info:
        connections[bad].ensure_connection()
    assert SECRET not in str(info.value) and SECRET not in caplog.text


def test_a_password_in_the_connect_string_is_never_shown(double, caplog):
    """python-oracledb takes NAME as "user/password@connect_string": the pool's description
    (its repr, logs, connect errors, stats) masks it, PASSWORD set or not."""
    driver, make = double
    caplog.set_level(logging.DEBUG)
    alias = make(NAME="scott/t1ger-pw@dbhost:1521/orclpdb", PASSWORD="", POOL_OPTIONS={"POOL_SIZE": 1})
    connections[alias].ensure_connection()
    connections[alias].close()
    from pool_core.registry import all_pools

    assert "scott/********@dbhost:1521/orclpdb" in repr(all_pools()[alias])
    driver.fail_with = oracledb.OperationalError("DPY-6005: cannot connect to database")
    bad = make(NAME="scott/t1ger-pw@nowhere:1521/orclpdb", PASSWORD="")
    with pytest.raises(OperationalError) as info:
        connections[bad].ensure_connection()
    assert "scott/********@nowhere" in str(info.value)
    for text in (repr(all_pools()), str(pool_core.stats()), str(info.value), caplog.text):
        assert "t1ger-pw" not in text
