"""psycopg 3 / psycopg2 hooks for the pool, picked the way Django picks the driver."""

from __future__ import annotations

import logging
from typing import Any

from django.db.backends.postgresql.psycopg_any import is_psycopg3

from pool_core.hooks import ClosedCursor, PostgresServerHooks, TransactionState

__all__ = ["is_psycopg3", "PostgresHooks"]

logger = logging.getLogger("pool_postgresql")

# libpq's PQtransactionStatus, shared by both drivers' conn.info.transaction_status.
_T = TransactionState
_STATUS = {0: _T.IDLE, 1: _T.BROKEN, 2: _T.IN_TRANSACTION, 3: _T.IN_TRANSACTION, 4: _T.BROKEN}
_IDLE, _INERROR = 0, 3


def _libpq_status(dbapi_connection: Any) -> int:
    if is_psycopg3:
        return int(dbapi_connection.pgconn.transaction_status)
    return int(dbapi_connection.get_transaction_status())


def _closed_connection_error() -> Exception:
    """What the driver raises on a cursor whose connection is closed (Django's stock case)."""
    if is_psycopg3:
        import psycopg

        return psycopg.OperationalError("the connection is closed")
    import psycopg2

    # psycopg2 checks its cursor first: a closed connection's cursor says so.
    return psycopg2.InterfaceError("cursor already closed")


class PostgresHooks(PostgresServerHooks):
    """Driver-level hooks: read local state, never a round trip unless stated."""

    pool_vendor_name = "postgresql+psycopg" if is_psycopg3 else "postgresql+psycopg2"
    @staticmethod
    def pool_cursor_closed(cursor: Any) -> bool:
        return bool(cursor.closed)  # psycopg cursors say it themselves

    if is_psycopg3:

        @staticmethod
        def pool_transaction_state(dbapi_connection: Any) -> TransactionState:
            # libpq's plain int (info.transaction_status builds an enum per
            # call); PQtransactionStatus says UNKNOWN (BROKEN here) for a
            # closed or broken connection, so no other check is needed.
            return _STATUS.get(dbapi_connection.pgconn.transaction_status, TransactionState.BROKEN)

    else:

        @staticmethod
        def pool_transaction_state(dbapi_connection: Any) -> TransactionState:
            if dbapi_connection.closed:
                return TransactionState.BROKEN
            return _STATUS.get(dbapi_connection.get_transaction_status(), TransactionState.BROKEN)

    @staticmethod
    def pool_driver_autocommit(dbapi_connection: Any) -> bool | None:
        return bool(dbapi_connection.autocommit)

    def pool_release_cursor(self, dbapi_connection: Any, cursor: Any) -> Any:
        """Close an unfinished iterator()'s named cursor: one round trip (CLOSE), none otherwise.

        Django declares it WITH HOLD in autocommit, so it would outlive the
        checkout on the session. CLOSE is refused in a failed transaction:
        roll back first (a cursor declared in that transaction dies with it).
        """
        if getattr(cursor, "name", None) and not cursor.closed and not dbapi_connection.closed:
            status = _libpq_status(dbapi_connection)
            if status == _INERROR:
                dbapi_connection.rollback()
                status = _libpq_status(dbapi_connection)
            if cursor.withhold or status != _IDLE:
                cursor.close()
        return ClosedCursor(_closed_connection_error())

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
