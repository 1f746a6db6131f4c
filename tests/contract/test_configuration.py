"""Bad settings surface early, as Django errors, and never show the password."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.utils import DatabaseError, OperationalError

import pool_core

SECRET = "s3cr3t-Pa55-w0rd"


# Issue 4, scenario 9: one table of bad input; each row is one clear error
# naming the alias and the key, and nothing is left half-built.
BAD_OPTIONS = [
    ({"NOPE": 1}, "NOPE", "unknown key"),
    ({"pool_sise": 1}, "pool_sise", "unknown key"),
    ({"POOL_SIZE": 0}, "POOL_SIZE", ">= 1"),
    ({"POOL_SIZE": -3}, "POOL_SIZE", ">= 1"),
    ({"POOL_SIZE": "10"}, "POOL_SIZE", "integer"),
    ({"POOL_SIZE": 2.5}, "POOL_SIZE", "integer"),
    ({"POOL_SIZE": True}, "POOL_SIZE", "integer"),
    ({"MAX_OVERFLOW": -2}, "MAX_OVERFLOW", ">= -1"),
    ({"MAX_OVERFLOW": None}, "MAX_OVERFLOW", "integer"),
    ({"TIMEOUT": 0}, "TIMEOUT", "> 0"),
    ({"TIMEOUT": -1}, "TIMEOUT", "> 0"),
    ({"TIMEOUT": "30"}, "TIMEOUT", "number of seconds"),
    ({"TIMEOUT": float("nan")}, "TIMEOUT", "finite"),
    ({"RECYCLE": 0}, "RECYCLE", "> 0"),
    ({"RECYCLE": "1h"}, "RECYCLE", "number of seconds"),
    ({"PRE_PING": "yes"}, "PRE_PING", "True or False"),
    ({"ECHO": "loud"}, "ECHO", "'debug'"),
    ({"RESET_SESSION": 1}, "RESET_SESSION", "True or False"),
    ({"LEAK_DETECTION_THRESHOLD": -5}, "LEAK_DETECTION_THRESHOLD", "> 0"),
    ({"POOL_SIZE": 1, "pool_size": 2}, "POOL_SIZE", "twice"),
    # Issue 12 item 4: finite but beyond any wait Python can make.
    ({"CONNECT_TIMEOUT": 1e300}, "CONNECT_TIMEOUT", "<="),
    ({"CONNECT_TIMEOUT": float("inf")}, "CONNECT_TIMEOUT", "finite"),
    ({"TIMEOUT": 1e300}, "TIMEOUT", "<="),
    (["POOL_SIZE", 1], "POOL_OPTIONS", "must be a dict"),
]


@pytest.mark.parametrize("pool_options,key,words", BAD_OPTIONS, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(BAD_OPTIONS)])
def test_bad_pool_options_fail_on_first_use_naming_alias_and_key(engine, pool_options, key, words):
    alias = engine.make_alias(pool_options)
    with pytest.raises(ImproperlyConfigured) as info:
        connections[alias].ensure_connection()
    message = str(info.value)
    assert f"DATABASES[{alias!r}]" in message and key in message and words in message
    assert connections[alias].connection is None
    # The same error again (not a half-built pool), then fixing the setting makes it work.
    with pytest.raises(ImproperlyConfigured):
        connections[alias].ensure_connection()
    connections[alias].settings_dict["POOL_OPTIONS"] = {"POOL_SIZE": 1}
    assert engine.backend_id(alias) > 0


def test_unreachable_server_is_a_django_error_without_password(engine, caplog):
    alias = engine.make_alias({"POOL_SIZE": 1, "TIMEOUT": 5}, HOST="127.0.0.1", PORT=1, PASSWORD=SECRET)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(OperationalError) as info:
        connections[alias].ensure_connection()
    assert type(info.value).__module__ == "django.db.utils"
    message = str(info.value)
    assert f"DATABASES[{alias!r}]" in message and "HOST, PORT" in message and ":1/" in message
    assert SECRET not in message
    assert SECRET not in caplog.text
    # The failed connect did not consume a slot: with POOL_SIZE=1 the second
    # attempt fails the same way instead of timing out.
    assert pool_core.stats(alias)["connections_open"] == 0
    with pytest.raises(OperationalError) as again:
        connections[alias].ensure_connection()
    assert "cannot open a connection" in str(again.value)
    assert pool_core.stats(alias)["checkout_timeouts"] == 0


def test_rejected_login_is_a_django_error_naming_the_alias(engine, caplog):
    """Wrong password (MariaDB) / unknown role (PostgreSQL: the local server trusts passwords)."""
    caplog.set_level(logging.DEBUG)
    user = engine.server.user if engine.vendor == "mysql" else "no_such_role_pool_test"
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0}, USER=user, PASSWORD=SECRET)
    for _ in range(2):
        with pytest.raises(OperationalError) as info:
            connections[alias].ensure_connection()
        message = str(info.value)
        assert f"DATABASES[{alias!r}]" in message and "USER, PASSWORD" in message
        assert SECRET not in message
    assert SECRET not in caplog.text
    assert pool_core.stats(alias)["connections_open"] == 0


def test_password_never_in_repr_stats_or_logs(engine, caplog):
    alias = engine.make_alias({"POOL_SIZE": 1, "ECHO": "debug"}, PASSWORD=SECRET)
    caplog.set_level(logging.DEBUG)
    if engine.vendor == "postgresql":
        # trust authentication ignores the password; the driver still carries it.
        engine.backend_id(alias)
    else:
        try:
            engine.backend_id(alias)
        except OperationalError as e:  # root has no such password: access denied
            assert SECRET not in str(e)
    connections[alias].close()
    from pool_core.registry import all_pools

    pool = all_pools()[alias]
    assert SECRET not in repr(pool)
    assert SECRET not in repr(pool_core.stats())
    import io

    from django.core.management import call_command
    from prometheus_client import CollectorRegistry, generate_latest

    from pool_core.prometheus import PoolCollector

    out = io.StringIO()
    call_command("pool_status", "--json", "--no-connect", stdout=out)
    call_command("pool_status", "--no-connect", stdout=out)
    assert alias in out.getvalue() and SECRET not in out.getvalue()
    registry = CollectorRegistry()
    registry.register(PoolCollector(use_stats_dir=False))
    assert SECRET not in generate_latest(registry).decode()
    assert SECRET not in caplog.text


def test_connect_timeout_reaches_the_driver_unless_options_set_one(engine):
    """CONNECT_TIMEOUT becomes the driver's connect_timeout; OPTIONS['connect_timeout'] wins."""
    from pool_core.options import parse_options

    assert parse_options("x", {"CONNECT_TIMEOUT": 1.5}).connect_timeout == 1.5
    assert parse_options("x", {"CONNECT_TIMEOUT": None}).connect_timeout is None
    wrapper = type(connections[engine.alias])
    params = wrapper.pool_connect_timeout_params({}, 0.5)
    assert params["connect_timeout"] == (2 if engine.vendor == "postgresql" else 1)  # whole seconds, libpq's minimum
    assert wrapper.pool_connect_timeout_params({"connect_timeout": 9}, 3)["connect_timeout"] == 9
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "CONNECT_TIMEOUT": 3})
    engine.backend_id(alias)  # connects with it
    connections[alias].close()


# The largest CONNECT_TIMEOUT each driver takes, in seconds: PyMySQL checks
# 31536000 itself; libpq, mysqlclient and pyodbc's login timeout take a C int
# of seconds; JDBC drivers end in Java's Socket.connect, an int of milliseconds.
CONNECT_TIMEOUT_MAX = {
    "postgresql-psycopg3": 2147483647,
    "postgresql-psycopg2": 2147483647,
    "mysql-pymysql": 31536000,
    "mysql-mysqlclient": 2147483647,
    "jdbc_postgresql": 2147483,
    "jdbc_mysql": 2147483,
    "jdbc_oceanbase_mysql": 2147483,
    "odbc_postgresql": 2147483647,
    "odbc_mysql": 2147483647,
}


def test_connect_timeout_above_the_drivers_limit_names_alias_key_and_limit(engine):
    """Issue 12 item 4: never a raw ValueError/OverflowError from the driver."""
    key = engine.id if engine.id in CONNECT_TIMEOUT_MAX else f"{engine.vendor}-{engine.driver}"
    if key not in CONNECT_TIMEOUT_MAX:
        pytest.skip(f"no known CONNECT_TIMEOUT limit for {engine.id}")
    limit = CONNECT_TIMEOUT_MAX[key]
    alias = engine.make_alias({"POOL_SIZE": 1, "CONNECT_TIMEOUT": limit + 1})
    with pytest.raises(ImproperlyConfigured) as info:
        connections[alias].ensure_connection()
    message = str(info.value)
    assert f"DATABASES[{alias!r}]" in message and "CONNECT_TIMEOUT" in message and str(limit) in message
    assert connections[alias].connection is None
    ok = engine.make_alias({"POOL_SIZE": 1, "CONNECT_TIMEOUT": limit})
    assert engine.backend_id(ok) > 0  # the limit itself is accepted


def test_a_short_password_does_not_mangle_the_error(engine):
    """Issue 12 item 4: PASSWORD='a' must not turn 'database' into 'd*t*b*s*'.

    MariaDB refuses the login (root has no password here); PostgreSQL
    (trust authentication) reports the missing database by name.
    """
    alias = engine.make_alias({"POOL_SIZE": 1}, NAME="no_such_database_pool_test", PASSWORD="a")
    with pytest.raises(DatabaseError) as info:
        connections[alias].ensure_connection()
    message = str(info.value)
    assert type(info.value).__module__ == "django.db.utils"
    assert f"DATABASES[{alias!r}]" in message and "cannot open a connection" in message
    assert "*" not in message, message
    if engine.vendor == "mysql":
        assert "using password: YES" in message, message
    else:
        assert "no_such_database_pool_test" in message, message


@pytest.fixture
def login_with_password(engine):
    """USER/PASSWORD that the server checks: a throwaway MariaDB user; PostgreSQL trusts any."""
    if engine.vendor != "mysql":
        yield {"PASSWORD": SECRET}
        return
    import os

    user = f"pool_mask_{os.getpid()}"
    hosts = ("localhost", "127.0.0.1", "%")
    for host in hosts:
        engine.q(f"CREATE OR REPLACE USER '{user}'@'{host}' IDENTIFIED BY '{SECRET}'")
    try:
        yield {"USER": user, "PASSWORD": SECRET}
    finally:
        for host in hosts:
            engine.q(f"DROP USER IF EXISTS '{user}'@'{host}'")


@pytest.mark.parametrize("name", [f"nodb password={SECRET}", f"nodb_{SECRET}"], ids=["position", "bare"])
def test_a_password_echoed_by_the_server_is_masked(engine, login_with_password, name, caplog):
    """The server quotes the database name back; the password in it never shows."""
    caplog.set_level(logging.DEBUG)
    alias = engine.make_alias({"POOL_SIZE": 1}, NAME=name, **login_with_password)
    with pytest.raises(DatabaseError) as info:
        connections[alias].ensure_connection()
    message = str(info.value)
    assert f"DATABASES[{alias!r}]" in message and "nodb" in message, message  # the server's own text
    assert SECRET not in message and "********" in message, message
    assert SECRET not in caplog.text
    # Nor in the traceback shown for it (Django's debug page, Sentry, a log's
    # exc_info), which includes the driver's error it was raised from.
    import traceback

    shown = "".join(traceback.format_exception(info.value))
    assert "nodb" in shown and SECRET not in shown, shown


@pytest.mark.parametrize("logging_on", ["ECHO", "sqlalchemy.pool at DEBUG"])
def test_a_password_echoed_by_the_server_is_masked_in_sqlalchemys_pool_log(
    engine, login_with_password, logging_on, caplog
):
    """SQLAlchemy's pool logs a failed connect with the driver's message ("Error on
    connect(): ..."), which quotes the password the server echoed back: masked
    there too, with POOL_OPTIONS["ECHO"] = "debug" or the sqlalchemy.pool logger at DEBUG."""
    caplog.set_level(logging.DEBUG)
    options = {"POOL_SIZE": 1}
    if logging_on == "ECHO":
        options["ECHO"] = "debug"
    else:
        caplog.set_level(logging.DEBUG, logger="sqlalchemy.pool")
    alias = engine.make_alias(options, NAME=f"nodb_{SECRET}", **login_with_password)
    with pytest.raises(DatabaseError):
        connections[alias].ensure_connection()
    logged = [r for r in caplog.records if r.name.startswith("sqlalchemy.pool")]
    assert any("Error on connect" in r.getMessage() for r in logged)  # SQLAlchemy did log it
    assert SECRET not in caplog.text
