"""Vendor pool hooks shared by the native drivers and the JDBC/ODBC bridges.

Each class holds the hooks that depend on the server's SQL dialect (and on
Django's backend for it) only, not on the driver; vendor packages combine
them with their driver-level hooks in one class line, as SQLAlchemy joins a
dialect and a connector::

    class PostgresHooks(PostgresServerHooks): ...                  # pool_postgresql: psycopg
    class PostgresPoolingMixin(PostgresHooks, PostgresSessionMixin, PoolingMixin): ...
    class PostgresBridgePoolHooks(PostgresServerHooks, PostgresSessionMixin, BridgePoolHooks): ...

Nothing here imports a driver; Django's backend modules (which do) are
imported inside the hooks that need them.
"""

from __future__ import annotations

import logging
import math
from typing import Any

__all__ = [
    "MySQLServerHooks",
    "OracleServerHooks",
    "PostgresServerHooks",
    "PostgresSessionMixin",
    "install_mysqldb_if_needed",
]

logger = logging.getLogger("pool_core")


class PostgresServerHooks:
    @staticmethod
    def pool_server_max_connections(cursor: Any) -> int | None:
        """Connections PostgreSQL accepts for ordinary (non-superuser) clients."""
        cursor.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - coalesce(current_setting('reserved_connections', true)::int, 0)"
        )
        return int(cursor.fetchone()[0])

    @staticmethod
    def pool_connect_timeout_params(conn_params: dict[str, Any], seconds: float) -> dict[str, Any]:
        # libpq (and pgJDBC/psqlODBC, which follow it): whole seconds, at least 2.
        conn_params.setdefault("connect_timeout", max(2, math.ceil(seconds)))
        return conn_params

    @staticmethod
    def pool_reset_session(dbapi_connection: Any) -> bool:
        """DISCARD ALL, outside a transaction block; one round trip."""
        autocommit = dbapi_connection.autocommit
        if not autocommit:
            dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("DISCARD ALL")
        if not autocommit:
            dbapi_connection.autocommit = False
        logger.debug("reset a PostgreSQL session (DISCARD ALL)")
        return True

    def pool_key_extra(self) -> tuple[Any, ...]:
        # Django sets the isolation level when it connects, and never resets a role.
        options = self.settings_dict["OPTIONS"]  # type: ignore[attr-defined]
        return (options.get("assume_role"), options.get("isolation_level"))

    def pool_session_signature(self) -> tuple[Any, ...]:
        # The time zone: init_connection_state() applies it again (and
        # PostgresSessionMixin._configure_timezone() resets one it cannot set).
        return (self.timezone_name,)  # type: ignore[attr-defined]

    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        # Django's get_new_connection sets this on the wrapper; a reused
        # connection skips that, so set it the same way here.
        from django.db.backends.postgresql.psycopg_any import IsolationLevel

        level = self.settings_dict["OPTIONS"].get("isolation_level")  # type: ignore[attr-defined]
        self.isolation_level = IsolationLevel.READ_COMMITTED if level is None else IsolationLevel(level)


class PostgresSessionMixin:
    """Django postgresql DatabaseWrapper overrides for a pooled session, whatever the driver.

    Put it before Django's DatabaseWrapper in the bases. ``_configure_timezone``
    handles the pooled case and leaves the rest to the next class: Django's
    (which reads the session's time zone from psycopg) or a bridge's.
    """

    def ensure_timezone(self) -> bool:
        # Django closes its own pool here; ours re-runs the set-up of a
        # connection whose session time zone differs from the checkout's.
        if self.connection is None:  # type: ignore[attr-defined]
            return False
        changed = self._configure_timezone(self.connection)  # type: ignore[attr-defined]
        self._pool_session_applied()  # type: ignore[attr-defined]
        return changed

    def _configure_timezone(self, connection: Any) -> bool:
        if not self.timezone_name:  # type: ignore[attr-defined]
            recorded = self._pool_recorded_session()  # type: ignore[attr-defined]
            if recorded and recorded[0]:
                # Django sets no time zone then (the server's applies); a pooled
                # session may carry one set under other settings.
                with connection.cursor() as cursor:
                    cursor.execute("RESET TIME ZONE")
                return True
        return bool(super()._configure_timezone(connection))  # type: ignore[misc]


class MySQLServerHooks:
    @staticmethod
    def pool_server_max_connections(cursor: Any) -> int | None:
        cursor.execute("SELECT @@max_connections")
        return int(cursor.fetchone()[0])

    def pool_key_extra(self) -> tuple[Any, ...]:
        return (self.isolation_level,)  # type: ignore[attr-defined]


class OracleServerHooks:
    """Oracle's dialect where a bridge needs it (the native driver pings on its own).

    Put it on the DatabaseWrapper side (``OracleBridgeMixin``): the pool's
    hooks read it from the final class.
    """

    #: The liveness check of ``is_usable()`` and the pool's ping: Oracle's SELECT needs a table.
    ping_sql = "SELECT 1 FROM DUAL"


def install_mysqldb_if_needed(*, missing_ok: bool = True) -> None:
    """Django's mysql backend imports MySQLdb: use PyMySQL as MySQLdb if mysqlclient is absent.

    With neither installed, *missing_ok* (the bridges, where PyMySQL is an
    extra) returns and lets Django report the missing driver; otherwise
    (pool_mysql, which depends on PyMySQL) PyMySQL's ImportError is raised.
    """
    import importlib
    import importlib.util

    if importlib.util.find_spec("MySQLdb") is None:
        try:
            pymysql = importlib.import_module("pymysql")
        except ImportError:
            if missing_ok:
                return  # Django reports the missing driver
            raise
        pymysql.install_as_MySQLdb()
