"""Per-vendor test helpers: settings, an admin connection, server-side facts.

Which contract tests apply to which ENGINE: by capability, never by test name.
``CAPABILITIES`` names every capability a contract test may need. An Engine
class lists the ones it lacks in ``lacks`` (capability -> why, the text of the
skip). A contract test states what it needs with
``@pytest.mark.requires("capability", ...)`` (or on one parameter:
``pytest.param(..., marks=pytest.mark.requires(...))``); the ``engine``
fixture then skips it for an engine that lacks one, with that engine's reason.
tests/conftest.py rejects an unknown capability at collection, and
tests/test_capabilities.py fails when a capability is declared but no test
requires it, so renaming a test or a capability cannot silently change what runs.
To add a case: name the capability in CAPABILITIES, mark the test, add the
reason to the engine's ``lacks``.
"""

from __future__ import annotations

import copy
import itertools
import os
from typing import Any

from django.db import connections

from tests._servers import Server

_counter = itertools.count()

#: POOL_OPTIONS["CHECKOUT"] for a whole pytest pass (native-driver engines only):
#: POOL_TEST_CHECKOUT=transaction runs the contract suite in transaction mode.
CHECKOUT = os.environ.get("POOL_TEST_CHECKOUT", "request")

_HOLDS = "holds a connection with one statement until close(); in transaction mode it is returned"
#: Contract tests that assert request-mode holding, skipped in a CHECKOUT=transaction pass
#: (tests/contract/test_transaction_checkout.py covers what transaction mode does instead).
REQUEST_MODE_ONLY: dict[str, str] = {
    "test_returned_connection_goes_to_a_waiter_not_to_the_parked_ones": _HOLDS + " before any thread waits",
    "test_overflow_connections_close_on_return_even_with_parked_ones": _HOLDS + ": no overflow opens",
    "test_autocommit_left_off_is_restored_on_the_next_checkout": _HOLDS + "; wrapper.connection is None after it",
    "test_prometheus_collector_exposes_the_stats": _HOLDS + "; the gauge reads 0 checked out",
    "test_connection_killed_in_flight_raises_django_error_then_recovers": (
        "kills the session the wrapper holds; in transaction mode it waits in the pool, where the "
        "checkout's pending-input check replaces it without an error"),
    "test_a_killed_connection_fails_djangos_health_check_and_is_discarded": (
        _HOLDS + "; Django's health check then finds no connection to check"),
    "test_exhausted_pool_times_out_with_a_clear_django_error": _HOLDS + ": the pool is never exhausted",
    "test_request_cycle_returns_connection": _HOLDS + ": checked out is 0 before request_finished",
    "test_several_aliases_have_their_own_pools": _HOLDS + ": checked out is 0 after the statement",
    "test_waiters_are_served_in_arrival_order": _HOLDS + ": nobody waits",
    "test_short_reconnect_also_serves_a_checkout_that_waited": _HOLDS + ": nobody waits",
    "test_bound_holds_while_connections_of_the_old_settings_are_checked_out": (
        _HOLDS + "; test_transaction_checkout.py's pinned-session tests cover the bound in this mode"),
    "test_dead_thread_is_reclaimed_although_another_collection_was_running": (
        _HOLDS + "; transaction mode's dead-thread case: test_transaction_checkout.py (pinned in atomic())"),
    "test_reset_session_restores_a_fresh_session": (
        "checks that a SET survives until close(); in transaction mode RESET_SESSION resets the "
        "session at every return, i.e. after each statement"),
}


class Engine:
    vendor = ""
    engine = ""
    id_sql = ""
    #: Bridge engines (JDBC/ODBC): alias, test id and database suffix.
    label = ""
    #: A variant of a native ENGINE (pool_postgresql.postgis, .django_tenants): own alias,
    #: test id and database suffix like a bridge, but ``label`` stays empty (it is no bridge).
    variant = ""
    #: Capabilities (keys of CAPABILITIES) this engine lacks -> why; the skip reason
    #: of every contract test marked ``requires`` with one of them.
    lacks: dict[str, str] = {}

    def __init__(self, server: Server, dbname: str, driver: str) -> None:
        self.server = server
        self.dbname = dbname
        self.driver = driver
        self.alias = f"{self.vendor}"
        self.id = f"{self.vendor}-{driver}"
        if self.label:  # bridge engines: own alias, own database
            self.alias = self.label
            self.id = self.label
            self.dbname = f"{dbname}_{self.label}"
        if self.variant:
            self.alias = self.variant
            self.id = f"{self.variant}-{driver}"
            self.dbname = f"{dbname}_{self.variant}"
        self._admin: Any = None
        self._extra_aliases: list[str] = []

    # -- settings --------------------------------------------------------------
    def settings(self, **pool_options: Any) -> dict[str, Any]:
        s = {
            "ENGINE": self.engine,
            "NAME": self.dbname,
            "USER": self.server.user,
            "PASSWORD": self.server.password,
            "HOST": self.server.host,
            "PORT": self.server.port,
            "OPTIONS": self.extra_options(),
            "TEST": {"NAME": f"test_{self.dbname}"},
        }
        pool_options = self.with_checkout(pool_options)
        if pool_options:
            s["POOL_OPTIONS"] = pool_options
        return s

    def with_checkout(self, pool_options: dict[str, Any]) -> dict[str, Any]:
        """*pool_options* with this pass's CHECKOUT (POOL_TEST_CHECKOUT) unless it sets one."""
        if CHECKOUT == "request" or "transaction_checkout" in self.lacks or any(str(k).upper() == "CHECKOUT" for k in pool_options):
            return pool_options
        return {**pool_options, "CHECKOUT": CHECKOUT}

    def extra_options(self) -> dict[str, Any]:
        return {}

    def runner_options(self) -> dict[str, Any]:
        """OPTIONS for the Django test-runner subprocess (test_django_runner)."""
        return {}

    def make_alias(self, pool_options: dict[str, Any] | None = None, **overrides: Any) -> str:
        """Register a new alias on the test database; removed after the test."""
        alias = f"{self.vendor}_{next(_counter)}"
        s = self.settings()
        if pool_options is not None:
            s["POOL_OPTIONS"] = self.with_checkout(pool_options) if isinstance(pool_options, dict) else pool_options
        s.update(overrides)
        configured = connections.configure_settings({"default": connections.settings["default"], alias: s})
        connections.settings[alias] = configured[alias]
        self._extra_aliases.append(alias)
        return alias

    def cleanup_aliases(self) -> None:
        for alias in self._extra_aliases:
            try:
                conn = getattr(connections._connections, alias, None)
                if conn is not None:
                    conn.close()
                    delattr(connections._connections, alias)
            except Exception:
                pass
            connections.settings.pop(alias, None)
        self._extra_aliases.clear()

    # -- server-side facts ------------------------------------------------------
    def backend_id(self, alias: str) -> int:
        with connections[alias].cursor() as cursor:
            cursor.execute(self.id_sql)
            return int(cursor.fetchone()[0])

    def backend_id_thread(self, alias: str) -> tuple[Any, list[Any]]:
        """A thread (not started) that runs one request on *alias*: [its backend id] or [the DatabaseError]."""
        import threading

        from django.db import DatabaseError

        got: list[Any] = []

        def request() -> None:
            try:
                got.append(self.backend_id(alias))
            except DatabaseError as e:
                got.append(e)
            finally:
                connections[alias].close()

        return threading.Thread(target=request), got

    def wait_session_gone(self, backend_id: int, seconds: float = 15.0) -> bool:
        """True once the server no longer lists *backend_id*; False after *seconds*.

        A closed connection leaves the server's session list asynchronously.
        """
        import time

        deadline = time.monotonic() + seconds
        while backend_id in self.server_sessions():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def admin_close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


class PostgresEngine(Engine):
    vendor = "postgresql"
    engine = "pool_postgresql"
    id_sql = "SELECT pg_backend_pid()"

    def extra_options(self) -> dict[str, Any]:
        return {"application_name": self.dbname}

    def admin(self) -> Any:
        if self._admin is None:
            self._admin = self.connect_admin("postgres")
        return self._admin

    def connect_admin(self, dbname: str) -> Any:
        """A new autocommit driver connection (not pooled) to *dbname*."""
        from django.db.backends.postgresql.psycopg_any import is_psycopg3

        kw = dict(host=self.server.host, port=self.server.port, user=self.server.user,
                  password=self.server.password or None, dbname=dbname)
        if is_psycopg3:
            import psycopg

            return psycopg.connect(**kw, autocommit=True)
        import psycopg2

        conn = psycopg2.connect(**kw)
        conn.autocommit = True
        return conn

    def q(self, sql: str, params: Any = None) -> list[tuple]:
        cur = self.admin().cursor()
        try:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
        finally:
            cur.close()

    def server_sessions(self) -> set[int]:
        rows = self.q("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                      [self.dbname])
        return {r[0] for r in rows}

    def kill(self, backend_id: int) -> bool:
        """Terminate the backend and wait until it is gone; False if it had already ended."""
        if not self.q("SELECT pg_terminate_backend(%s)", [backend_id])[0][0]:
            return False
        # pg_terminate_backend only signals; wait until the session is gone.
        import time

        for _ in range(400):
            if backend_id not in self.server_sessions():
                return True
            time.sleep(0.01)
        raise AssertionError(f"backend {backend_id} still alive")

    def create_database(self) -> None:
        self.q(f'DROP DATABASE IF EXISTS "{self.dbname}"')
        self.q(f'CREATE DATABASE "{self.dbname}"')

    def drop_database(self) -> None:
        self.q(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')

    def create_tables(self) -> None:
        from tests.testapp.models import Note

        with connections[self.alias].schema_editor() as editor:
            editor.create_model(Note)
        connections[self.alias].close()


class PostGISEngine(PostgresEngine):
    """``pool_postgresql.postgis`` on its own database, where the set-up creates the postgis extension."""

    engine = "pool_postgresql.postgis"
    variant = "postgis"

    def create_database(self) -> None:
        super().create_database()
        # No skip: a server without PostGIS fails the run here.
        conn = self.connect_admin(self.dbname)
        try:
            cur = conn.cursor()
            cur.execute("CREATE EXTENSION postgis")
            cur.close()
        finally:
            conn.close()


class TenantsEngine(PostgresEngine):
    """``pool_postgresql.django_tenants``: shares the test settings (the backend reads only optional
    settings with defaults: ORIGINAL_BACKEND, PUBLIC_SCHEMA_NAME, TENANT_LIMIT_SET_CALLS...); the
    connection starts on the public schema, as in a project before set_tenant()."""

    engine = "pool_postgresql.django_tenants"
    variant = "django_tenants"
    lacks = {
        "exact_round_trips": "django-tenants sends SET search_path on every cursor (once per checkout with "
                             "TENANT_LIMIT_SET_CALLS), a round trip of its own; the pool's side is counted "
                             "with pool_postgresql",
        "operational_error_on_dead_connection": "django-tenants runs SET search_path first on every cursor "
            "and swallows its DatabaseError (django_tenants/postgresql_backend/base.py, _handle_search_path), "
            "so the query on a killed connection fails with InterfaceError ('cursor already closed') instead",
        "transaction_checkout": "django-tenants keeps the tenant in the session's search_path, which "
            "transaction checkout would hand to another request",
    }


class MySQLEngine(Engine):
    vendor = "mysql"
    engine = "pool_mysql"
    id_sql = "SELECT CONNECTION_ID()"

    def admin(self) -> Any:
        if self._admin is None:
            import MySQLdb

            kw = dict(host=self.server.host, port=self.server.port, user=self.server.user,
                      password=self.server.password)
            self._admin = MySQLdb.connect(**kw)
            self._admin.autocommit(True)
        return self._admin

    def q(self, sql: str, params: Any = None) -> list[tuple]:
        cur = self.admin().cursor()
        try:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def server_sessions(self) -> set[int]:
        rows = self.q("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                      [self.dbname])
        return {int(r[0]) for r in rows}

    def kill(self, backend_id: int) -> bool:
        """KILL the session; False if it had already ended (error 1094, unknown thread id)."""
        try:
            self.q(f"KILL {int(backend_id)}")
        except Exception as e:
            if getattr(e, "args", (None,))[0] == 1094:
                return False
            raise
        return True

    def create_database(self) -> None:
        self.q(f"DROP DATABASE IF EXISTS `{self.dbname}`")
        self.q(f"CREATE DATABASE `{self.dbname}` CHARACTER SET utf8mb4")

    def drop_database(self) -> None:
        self.q(f"DROP DATABASE IF EXISTS `{self.dbname}`")

    create_tables = PostgresEngine.create_tables


PG_JAR = "/usr/share/java/postgresql.jar"
MARIADB_JAR = "/usr/share/java/mariadb-java-client.jar"
_JVM_FORK = ("a JVM does not survive fork(): a child forked after the JVM started gets a clear "
             "error instead (tests/vendors/jdbc/test_jdbc.py::test_forked_child_gets_a_clear_error)")
_NO_SOCKET = ("the JDBC/ODBC driver owns the socket, so the pool cannot see the server's goodbye on it; "
              "with PRE_PING_IDLE=0 every checkout is validated (test_connection_killed_while_idle_is_replaced)")

#: Every capability a contract test may require (``@pytest.mark.requires``): name -> what it means.
CAPABILITIES: dict[str, str] = {
    "visible_socket": "the pool sees the driver's socket, so a server's goodbye on an idle connection is "
                      "noticed without a ping",
    "stock_engine_comparison": "Django's stock backend can be configured from the engine's settings, to "
                               "compare costs with it",
    "fork": "a child forked after the parent used the engine can open its own connections",
    "parallel_test_runner": "Django's test runner with --parallel (it forks) works",
    "one_round_trip_ping": "the ping's SELECT 1 is exactly one round trip",
    "exact_round_trips": "the driver and the backend send no command of their own, so a request cycle's "
                         "round trips can be counted exactly",
    "test_runner_databases": "the test user may create the test runner's databases",
    "connect_timeout_option": "OPTIONS['connect_timeout'] is a connect() argument of the driver",
    "operational_error_on_dead_connection": "a query on a connection the server killed raises OperationalError",
    "transaction_checkout": "POOL_OPTIONS['CHECKOUT'] = 'transaction' is implemented (native psycopg/MySQL drivers)",
    "short_reconnect": "connect() on a parked connection takes PoolingMixin._pool_reconnect (the driver's "
                       "autocommit flag can be read without a round trip)",
}

_NO_TX = "CHECKOUT='transaction' is implemented for the native drivers only (docs/behaviour.md, Transaction pooling)"
_BRIDGE_LACKS = {
    "visible_socket": _NO_SOCKET,
    "transaction_checkout": _NO_TX,
    "stock_engine_comparison": "compares with Django's stock backend "
        "on the native driver, which a bridge's OPTIONS (CLASSPATH, DRIVER) cannot configure; the "
        "bridge's own request cycle is counted by test_one_round_trip_per_trivial_request_cycle",
}
_JDBC_LACKS = {
    **_BRIDGE_LACKS,
    "fork": _JVM_FORK,
    "parallel_test_runner": "Django's --parallel runner forks after the parent started the JVM: " + _JVM_FORK,
}


class JDBCPostgresEngine(PostgresEngine):
    engine = "pool_jdbc.postgresql"
    label = "jdbc_postgresql"
    lacks = _JDBC_LACKS

    def extra_options(self) -> dict[str, Any]:
        return {"CLASSPATH": [PG_JAR], "ApplicationName": self.dbname}

    def runner_options(self) -> dict[str, Any]:
        return {"CLASSPATH": [PG_JAR]}


class JDBCMySQLEngine(MySQLEngine):
    engine = "pool_jdbc.mysql"
    label = "jdbc_mysql"
    lacks = _JDBC_LACKS
    #: No reset-connection call through JDBC: RESET_SESSION replaces the connection.
    reset_replaces = True

    def extra_options(self) -> dict[str, Any]:
        return {"CLASSPATH": [MARIADB_JAR], "JDBC_DRIVER": "org.mariadb.jdbc.Driver"}

    runner_options = extra_options


class JDBCOceanBaseMySQLEngine(JDBCMySQLEngine):
    """OceanBase MySQL mode's backend, proven against MariaDB with the MariaDB JDBC driver."""

    engine = "pool_jdbc.oceanbase.mysql"
    label = "jdbc_oceanbase_mysql"


class ODBCPostgresEngine(PostgresEngine):
    engine = "pool_odbc.postgresql"
    label = "odbc_postgresql"
    lacks = _BRIDGE_LACKS

    def extra_options(self) -> dict[str, Any]:
        return {"DRIVER": "PostgreSQL Unicode"}

    runner_options = extra_options


class ODBCMySQLEngine(MySQLEngine):
    engine = "pool_odbc.mysql"
    label = "odbc_mysql"
    lacks = {
        **_BRIDGE_LACKS,
        "one_round_trip_ping": "MariaDB Connector/ODBC needs more than one "
            "round trip for the ping's SELECT 1 (measured 2 per ping); the test pins exactly one",
        "exact_round_trips": "MariaDB Connector/ODBC now and then sends a "
            "command of its own (CI once counted 6 round trips for 5 cycles); the pool's side is "
            "asserted with the native drivers and the other bridges",
    }
    #: No reset-connection call through ODBC: RESET_SESSION replaces the connection.
    reset_replaces = True

    def extra_options(self) -> dict[str, Any]:
        return {"DRIVER": "MariaDB Unicode"}

    runner_options = extra_options


class OracleEngine(Engine):
    """A live Oracle server from POOL_TEST_ORACLE_DSN / _USER / _PASSWORD (never started here)."""

    vendor = "oracle"
    engine = "pool_oracle"
    label = "oracle"
    id_sql = "SELECT SYS_CONTEXT('USERENV', 'SID') FROM DUAL"
    lacks = {
        "visible_socket": "python-oracledb owns its socket: the pool cannot poll or shut it down",
        "transaction_checkout": _NO_TX,
        "test_runner_databases": "needs a user allowed to create users/tablespaces; run Django's "
                                   "own suite against the server instead",
        "connect_timeout_option": "the test adds OPTIONS['connect_timeout'], which is not an "
                                                "oracledb.connect() argument (tcp_connect_timeout is)",
        "short_reconnect": "pool_oracle reads no autocommit flag locally (no pool_driver_autocommit): every "
                           "connect() is Django's full one",
    }

    def __init__(self, server: Server, dbname: str, driver: str) -> None:
        super().__init__(server, dbname, driver)
        import os

        self.dsn = os.environ["POOL_TEST_ORACLE_DSN"]
        self.user = os.environ.get("POOL_TEST_ORACLE_USER", "")
        self.password = os.environ.get("POOL_TEST_ORACLE_PASSWORD", "")

    def settings(self, **pool_options: Any) -> dict[str, Any]:
        s = {"ENGINE": self.engine, "NAME": self.dsn, "USER": self.user, "PASSWORD": self.password,
             "HOST": "", "PORT": "", "OPTIONS": {}, "TEST": {"NAME": self.dsn}}
        pool_options = self.with_checkout(pool_options)
        if pool_options:
            s["POOL_OPTIONS"] = pool_options
        return s

    def with_checkout(self, pool_options: dict[str, Any]) -> dict[str, Any]:
        """*pool_options* with this pass's CHECKOUT (POOL_TEST_CHECKOUT) unless it sets one."""
        if CHECKOUT == "request" or "transaction_checkout" in self.lacks or any(str(k).upper() == "CHECKOUT" for k in pool_options):
            return pool_options
        return {**pool_options, "CHECKOUT": CHECKOUT}

    def admin(self) -> Any:
        if self._admin is None:
            import oracledb

            self._admin = oracledb.connect(user=self.user, password=self.password, dsn=self.dsn)
            self._admin.autocommit = True
        return self._admin

    def q(self, sql: str, params: Any = None) -> list[tuple]:
        cur = self.admin().cursor()
        try:
            cur.execute(sql.replace("%s", ":1"), params or [])
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def server_sessions(self) -> set[int]:
        rows = self.q("SELECT sid FROM v$session WHERE username = USER AND sid <> SYS_CONTEXT('USERENV', 'SID')")
        return {int(r[0]) for r in rows}

    def kill(self, backend_id: int) -> None:
        rows = self.q("SELECT serial# FROM v$session WHERE sid = %s", [backend_id])
        self.q(f"ALTER SYSTEM KILL SESSION '{int(backend_id)},{int(rows[0][0])}' IMMEDIATE")

    def create_database(self) -> None:
        pass  # Oracle: the user's schema is the database

    def drop_database(self) -> None:
        try:
            self.q('DROP TABLE "TESTAPP_NOTE" PURGE')
        except Exception:
            pass

    create_tables = PostgresEngine.create_tables


class JDBCOracleEngine(OracleEngine):
    """pool_jdbc.oracle on the live Oracle server, when POOL_TEST_ORACLE_JDBC_JAR names ojdbc."""

    engine = "pool_jdbc.oracle"
    label = "jdbc_oracle"
    lacks = {**{k: v for k, v in OracleEngine.lacks.items() if k != "short_reconnect"}, **_JDBC_LACKS}

    def settings(self, **pool_options: Any) -> dict[str, Any]:
        import os

        s = super().settings(**pool_options)
        s["OPTIONS"] = {"CLASSPATH": [os.environ["POOL_TEST_ORACLE_JDBC_JAR"]]}
        return s

    def create_tables(self) -> None:
        pass  # same schema as OracleEngine, which creates and drops the table

    def drop_database(self) -> None:
        pass


BRIDGE_ENGINES: list[type[Engine]] = [JDBCPostgresEngine, JDBCMySQLEngine, JDBCOceanBaseMySQLEngine,
                                      ODBCPostgresEngine, ODBCMySQLEngine]


def build_engines(pg: Server, my: Server, run_id: str, pg_driver: str, mysql_driver: str,
                  bridges: bool = False) -> list[Engine]:
    """The engines of one pytest process (one driver pair).

    The PostgreSQL variants run in one driver pass each, to keep CI time small
    (they differ from ``pool_postgresql`` in the wrapper, not the driver):
    ``pool_postgresql.postgis`` with psycopg 3, ``pool_postgresql.django_tenants``
    with psycopg2.
    """
    pg_id = "psycopg3" if pg_driver == "psycopg" else "psycopg2"
    engines: list[Engine] = [
        PostgresEngine(pg, run_id, pg_id),
        MySQLEngine(my, run_id, mysql_driver),
        PostGISEngine(pg, run_id, pg_id) if pg_driver == "psycopg" else TenantsEngine(pg, run_id, pg_id),
    ]
    if bridges:
        for cls in BRIDGE_ENGINES:
            server = pg if issubclass(cls, PostgresEngine) else my
            engines.append(cls(server, run_id, cls.label))
    import os

    if os.environ.get("POOL_TEST_ORACLE_DSN"):
        engines.append(OracleEngine(pg, run_id, "oracledb"))
        if bridges and os.environ.get("POOL_TEST_ORACLE_JDBC_JAR"):
            engines.append(JDBCOracleEngine(pg, run_id, "jdbc"))
    return engines


def copy_settings(s: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(s)
