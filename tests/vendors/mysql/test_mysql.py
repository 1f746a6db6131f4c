"""MySQL/MariaDB-only behaviour."""

from __future__ import annotations

import importlib.util

from django.db import connections

import pool_core
from tests.contract.test_session_state import _change, _state


def test_pymysql_is_installed_as_mysqldb_only_when_mysqlclient_is_absent():
    import MySQLdb

    import pool_mysql  # noqa: F401

    if importlib.util.find_spec("pymysql") and MySQLdb.__name__ == "pymysql":
        assert MySQLdb.__name__ == "pymysql"
    else:
        assert MySQLdb.__name__ == "MySQLdb"


def test_explicit_begin_in_autocommit_is_rolled_back_on_return(mysql):
    """A raw START TRANSACTION left open never reaches the next user (PyMySQL sees it)."""
    import MySQLdb

    alias = mysql.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    with conn.cursor() as cursor:
        cursor.execute("START TRANSACTION")
        cursor.execute("INSERT INTO testapp_note (text, n) VALUES ('raw-begin', 1)")
    conn.close()
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM testapp_note WHERE text = 'raw-begin'")
        count = cursor.fetchone()[0]
        cursor.execute("SELECT @@in_transaction")
        in_tx = cursor.fetchone()[0]
    conn.close()
    if MySQLdb.__name__ == "pymysql":
        assert count == 0 and in_tx == 0
        assert pool_core.stats(alias)["rollbacks_on_return"] == 1
    else:
        # Documented limitation: mysqlclient does not expose the server's
        # in-transaction flag, so a raw BEGIN in autocommit mode survives the
        # return (Django's own transactions never open one that way).
        assert in_tx == 1
        with conn.cursor() as cursor:
            cursor.execute("ROLLBACK")
        conn.close()


def test_isolation_level_set_once_per_physical_connection(mysql):
    alias = mysql.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    for _ in range(3):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT @@session.tx_isolation")
            assert cursor.fetchone()[0] == "READ-COMMITTED"
        connections[alias].close()
    assert pool_core.stats(alias)["connections_created"] == 1


def test_missing_ssl_ca_file_names_the_alias_and_the_options_key(mysql):
    """Issue 12 item 4: PyMySQL raised a bare FileNotFoundError naming no alias."""
    import pytest
    from django.core.exceptions import ImproperlyConfigured

    from pool_mysql._driver import _driver_is_pymysql

    if not _driver_is_pymysql():
        pytest.skip("mysqlclient (libmariadb) does not read the CA file when the server offers no TLS")
    alias = mysql.make_alias({"POOL_SIZE": 1}, OPTIONS={"ssl": {"ca": "/nonexistent/pool-test-ca.pem"}})
    with pytest.raises(ImproperlyConfigured) as info:
        connections[alias].ensure_connection()
    message = str(info.value)
    assert f"DATABASES[{alias!r}]" in message, message
    assert "OPTIONS['ssl']['ca']" in message and "FileNotFoundError" in message, message
    assert connections[alias].connection is None
    assert pool_core.stats(alias)["connections_open"] == 0


def test_reset_session_keeps_the_init_command(mysql):
    """MySQL: OPTIONS['init_command'] is applied again after the reset."""
    opts = {**mysql.settings()["OPTIONS"], "init_command": "SET @@SESSION.wait_timeout = 4321"}
    alias = mysql.make_alias({"POOL_SIZE": 1, "RESET_SESSION": True}, OPTIONS=opts)
    _change(alias, ["SET SESSION wait_timeout = 99"])
    connections[alias].close()
    assert _state(alias, "SELECT CAST(@@SESSION.wait_timeout AS CHAR)") == ("4321",)
    connections[alias].close()
