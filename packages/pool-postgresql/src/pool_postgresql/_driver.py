"""psycopg 3 / psycopg2 hooks for the pool, picked the way Django picks the driver."""

from __future__ import annotations

import logging
import math
from typing import Any

from django.db.backends.postgresql.psycopg_any import is_psycopg3

from pool_core.pool import BROKEN, IDLE, IN_TRANSACTION

__all__ = ["is_psycopg3", "PostgresHooks"]

logger = logging.getLogger("pool_postgresql")

# libpq's PQtransactionStatus, shared by both drivers' conn.info.transaction_status.
_STATUS = {0: IDLE, 1: BROKEN, 2: IN_TRANSACTION, 3: IN_TRANSACTION, 4: BROKEN}


class PostgresHooks:
    """Driver-level hooks: read local state, never a round trip unless stated."""

    pool_vendor_name = "postgresql+psycopg" if is_psycopg3 else "postgresql+psycopg2"

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> int:
        if dbapi_connection.closed or getattr(dbapi_connection, "broken", False):
            return BROKEN
        return _STATUS.get(int(dbapi_connection.info.transaction_status), BROKEN)

    @staticmethod
    def pool_ping(dbapi_connection: Any) -> bool:
        """One round trip; leaves the connection as idle as it found it."""
        if is_psycopg3 and dbapi_connection.autocommit:
            dbapi_connection.execute("")
            return True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if int(dbapi_connection.info.transaction_status) != 0:
            dbapi_connection.rollback()
        return True

    @staticmethod
    def pool_fileno(dbapi_connection: Any) -> int | None:
        return int(dbapi_connection.fileno())

    @staticmethod
    def pool_server_max_connections(cursor: Any) -> int | None:
        cursor.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - coalesce(current_setting('reserved_connections', true)::int, 0)"
        )
        return int(cursor.fetchone()[0])

    @staticmethod
    def pool_connect_timeout_params(conn_params: dict[str, Any], seconds: float) -> dict[str, Any]:
        # libpq: whole seconds, and anything below 2 counts as 2.
        conn_params.setdefault("connect_timeout", max(2, math.ceil(seconds)))
        return conn_params

    @staticmethod
    def pool_reset_session(dbapi_connection: Any) -> bool:
        autocommit = dbapi_connection.autocommit
        if not autocommit:
            dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("DISCARD ALL")
        if not autocommit:
            dbapi_connection.autocommit = False
        logger.debug("reset a PostgreSQL session (DISCARD ALL)")
        return True
