"""psycopg 3 / psycopg2 hooks for the pool, picked the way Django picks the driver."""

from __future__ import annotations

import logging
from typing import Any

from django.db.backends.postgresql.psycopg_any import is_psycopg3

from pool_core.hooks import PostgresServerHooks
from pool_core.pool import BROKEN, IDLE, IN_TRANSACTION

__all__ = ["is_psycopg3", "PostgresHooks"]

logger = logging.getLogger("pool_postgresql")

# libpq's PQtransactionStatus, shared by both drivers' conn.info.transaction_status.
_STATUS = {0: IDLE, 1: BROKEN, 2: IN_TRANSACTION, 3: IN_TRANSACTION, 4: BROKEN}


class PostgresHooks(PostgresServerHooks):
    """Driver-level hooks: read local state, never a round trip unless stated."""

    pool_vendor_name = "postgresql+psycopg" if is_psycopg3 else "postgresql+psycopg2"

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> int:
        if dbapi_connection.closed or getattr(dbapi_connection, "broken", False):
            return BROKEN
        if is_psycopg3:
            # libpq's plain int: info.transaction_status builds an enum per call.
            return _STATUS.get(dbapi_connection.pgconn.transaction_status, BROKEN)
        return _STATUS.get(dbapi_connection.get_transaction_status(), BROKEN)

    @staticmethod
    def pool_driver_autocommit(dbapi_connection: Any) -> bool | None:
        return bool(dbapi_connection.autocommit)

    @classmethod
    def pool_connect_timeout_max(cls) -> int | None:
        # libpq parses connect_timeout into a C int of seconds.
        return 2147483647

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
