"""Vendor pool hooks shared by the native drivers and the JDBC/ODBC bridges.

Each class holds the hooks that depend on the server's SQL dialect only, not
on the driver; vendor packages combine them with their driver-level hooks.
"""

from __future__ import annotations

import logging
import math
from typing import Any

__all__ = ["MySQLServerHooks", "PostgresServerHooks"]

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


class MySQLServerHooks:
    @staticmethod
    def pool_server_max_connections(cursor: Any) -> int | None:
        cursor.execute("SELECT @@max_connections")
        return int(cursor.fetchone()[0])
