"""mysqlclient / PyMySQL hooks for the pool.

Django's MySQL backend imports ``MySQLdb``. When mysqlclient is not
installed, PyMySQL is installed under that name (``pymysql.install_as_MySQLdb``).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from pool_core.pool import BROKEN, IDLE, IN_TRANSACTION, UNKNOWN

_SERVER_STATUS_IN_TRANS = 1


def install_pymysql_if_needed() -> None:
    if importlib.util.find_spec("MySQLdb") is None:
        import pymysql

        pymysql.install_as_MySQLdb()


def is_pymysql(dbapi_connection: Any) -> bool:
    return type(dbapi_connection).__module__.startswith("pymysql")


class MySQLHooks:
    pool_vendor_name = "mysql"

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> int:
        """Read from the last server status the driver saw; no round trip.

        With autocommit off, a transaction may be open without the driver
        knowing (result sets do not refresh the status), so report UNKNOWN
        and let the pool roll back. With autocommit on, only an explicit
        BEGIN opens one, and its OK packet sets SERVER_STATUS_IN_TRANS, which
        PyMySQL exposes; mysqlclient does not, so an explicit BEGIN left open
        with mysqlclient is not detected (Django itself never does that).
        """
        if not dbapi_connection.open:
            return BROKEN
        if not dbapi_connection.get_autocommit():
            return UNKNOWN
        if is_pymysql(dbapi_connection) and dbapi_connection.server_status & _SERVER_STATUS_IN_TRANS:
            return IN_TRANSACTION
        return IDLE

    @staticmethod
    def pool_driver_autocommit(dbapi_connection: Any) -> bool | None:
        return bool(dbapi_connection.get_autocommit())

    @staticmethod
    def pool_ping(dbapi_connection: Any) -> bool:
        if is_pymysql(dbapi_connection):
            dbapi_connection.ping(reconnect=False)
        else:
            dbapi_connection.ping()
        return True

    @staticmethod
    def pool_fileno(dbapi_connection: Any) -> int | None:
        if is_pymysql(dbapi_connection):
            sock = getattr(dbapi_connection, "_sock", None)
            return None if sock is None else int(sock.fileno())
        return int(dbapi_connection.fileno())

    @staticmethod
    def pool_reset_session(dbapi_connection: Any) -> None:
        if is_pymysql(dbapi_connection):
            # COM_RESET_CONNECTION (0x1f): resets session variables, temporary
            # tables, prepared statements; keeps the login. One round trip.
            dbapi_connection._execute_command(0x1F, b"")
            dbapi_connection._read_ok_packet()
        else:
            from django.db import NotSupportedError

            raise NotSupportedError(
                "RESET_SESSION needs PyMySQL: mysqlclient has no reset-connection call."
            )
