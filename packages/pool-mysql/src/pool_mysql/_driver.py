"""mysqlclient / PyMySQL hooks for the pool.

Django's MySQL backend imports ``MySQLdb``. When mysqlclient is not
installed, PyMySQL is installed under that name
(``pool_core.hooks.install_mysqldb_if_needed``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from pool_core.hooks import MySQLServerHooks, TransactionState

_SERVER_STATUS_IN_TRANS = 1

logger = logging.getLogger("pool_mysql")


def is_pymysql(dbapi_connection: Any) -> bool:
    return type(dbapi_connection).__module__.startswith("pymysql")


class _CutOffConnection:
    """The connection a cursor cut off at return sees: closed, as with the stock ENGINE.

    A statement raises the driver's own error for a closed connection
    (mysqlclient ``OperationalError(2006)``, PyMySQL ``InterfaceError(0)``);
    rows already fetched (buffered) stay readable and ``close()`` is silent:
    nothing more can come from the server.
    """

    _result = None  # PyMySQL: close()'s nextset() finds no result of this connection

    def __init__(self, error: Exception) -> None:
        self._error = error

    def next_result(self) -> int:
        return -1  # mysqlclient: close()'s _discard() finds no more results

    def __getattr__(self, name: str) -> Any:
        raise type(self._error)(*self._error.args)


def _closed_connection_error(dbapi_connection: Any) -> Exception:
    # The classes the connection itself raises (PEP 249's optional connection
    # attributes): an import of "MySQLdb.err" under PyMySQL-as-MySQLdb makes a
    # second copy of pymysql.err, whose classes Django would not wrap.
    if is_pymysql(dbapi_connection):
        return dbapi_connection.InterfaceError(0, "")  # type: ignore[no-any-return]
    return dbapi_connection.OperationalError(2006, "")  # type: ignore[no-any-return]


class _HandshakeBound(dict):  # type: ignore[type-arg]
    """Connect parameters whose read_timeout only bounds the handshake."""


def _driver_is_pymysql() -> bool:
    import MySQLdb

    return MySQLdb.__name__.startswith("pymysql")  # install_as_MySQLdb() keeps its name


class MySQLHooks(MySQLServerHooks):
    pool_vendor_name = "mysql"

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> TransactionState:
        """Read from the last server status the driver saw; no round trip.

        With autocommit off, a transaction may be open without the driver
        knowing (result sets do not refresh the status), so report UNKNOWN and
        let the pool roll back. With autocommit on, only an explicit
        BEGIN opens one, and its OK packet sets SERVER_STATUS_IN_TRANS, which
        PyMySQL exposes; mysqlclient does not, so an explicit BEGIN left open
        with mysqlclient is not detected (Django itself never does that).
        """
        if not dbapi_connection.open:
            return TransactionState.BROKEN
        if not dbapi_connection.get_autocommit():
            return TransactionState.UNKNOWN
        if is_pymysql(dbapi_connection) and dbapi_connection.server_status & _SERVER_STATUS_IN_TRANS:
            return TransactionState.IN_TRANSACTION
        return TransactionState.IDLE

    @staticmethod
    def pool_driver_autocommit(dbapi_connection: Any) -> bool | None:
        return bool(dbapi_connection.get_autocommit())

    @staticmethod
    def pool_cursor_closed(cursor: Any) -> bool:
        # Django's MySQL CursorWrapper holds the driver's cursor, which has no
        # "closed": its close() sets its connection to None (MySQLdb, PyMySQL).
        # Read directly: the generic getattr(cursor, "closed") goes through
        # the wrapper's __getattr__ into an AttributeError, at every request's end.
        return getattr(cursor, "cursor", cursor).connection is None

    @staticmethod
    def pool_release_cursor(dbapi_connection: Any, cursor: Any) -> Any:
        """Cut an open cursor (an unfinished iterator(), one kept past close()) off the connection.

        No round trip. Django's default (buffered) cursors hold every row
        client-side: an old generator reads the rest, as with the stock
        ENGINE after the connection closed, but its clean-up no longer
        touches the connection; a new statement fails as on a closed
        connection. An unbuffered result (OPTIONS cursorclass SSCursor)
        still has rows on the wire: the connection is discarded, as the
        stock ENGINE closes it (reading the rest could take long), and the
        old generator fails.
        """
        driver = getattr(cursor, "cursor", cursor)  # Django's MySQL CursorWrapper holds the driver's
        if is_pymysql(dbapi_connection):
            result = getattr(dbapi_connection, "_result", None)
            if result is not None and getattr(result, "unbuffered_active", False):
                raise ConnectionError("an unbuffered result was left unread")
        else:
            import MySQLdb.cursors

            if isinstance(driver, MySQLdb.cursors.CursorUseResultMixIn) and driver._result is not None:
                raise ConnectionError("an unbuffered result was left unread")
        driver.connection = _CutOffConnection(_closed_connection_error(dbapi_connection))
        return cursor

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

    @classmethod
    def pool_connect_timeout_max(cls) -> int | None:
        # PyMySQL checks 0 < connect_timeout <= 31536000 (one year) itself;
        # mysqlclient converts it to a C int.
        return 31536000 if _driver_is_pymysql() else 2147483647

    @staticmethod
    def pool_connect_timeout_params(conn_params: dict[str, Any], seconds: float) -> dict[str, Any]:
        # mysqlclient takes whole seconds and bounds the handshake with them.
        conn_params.setdefault("connect_timeout", max(1, math.ceil(seconds)))
        if _driver_is_pymysql() and conn_params.get("read_timeout") is None:
            # PyMySQL's connect_timeout covers the TCP connect only; the
            # handshake then waits as long as read_timeout (forever if unset).
            # Bound it too, and lift the bound once connected.
            params = _HandshakeBound(conn_params)
            params["read_timeout"] = seconds
            return params
        return conn_params

    @staticmethod
    def pool_after_connect(dbapi_connection: Any, conn_params: dict[str, Any]) -> None:
        if isinstance(conn_params, _HandshakeBound):
            dbapi_connection._read_timeout = None
            dbapi_connection._current_timeout = None
            dbapi_connection._sock.settimeout(None)

    @staticmethod
    def pool_reset_session(dbapi_connection: Any) -> bool:
        if is_pymysql(dbapi_connection):
            # COM_RESET_CONNECTION (0x1f): resets session variables, temporary
            # tables, prepared statements; keeps the login. One round trip.
            conn = dbapi_connection
            conn._execute_command(0x1F, b"")
            conn._read_ok_packet()
            # The reset returns session variables to the server's globals: put
            # back what PyMySQL set when it connected (character set and
            # collation, sql_mode, OPTIONS['init_command'], autocommit).
            conn.set_character_set(conn.charset, getattr(conn, "collation", None))
            with conn.cursor() as cursor:
                if conn.sql_mode is not None:
                    cursor.execute("SET sql_mode=%s", (conn.sql_mode,))
                if conn.init_command is not None:
                    cursor.execute(conn.init_command)
            if conn.autocommit_mode is not None:
                conn.autocommit(conn.autocommit_mode)
            logger.debug("reset a PyMySQL session (COM_RESET_CONNECTION)")
            return True
        # mysqlclient exposes no reset-connection call: the pool closes the
        # connection instead, and the next checkout opens a fresh session.
        logger.debug("mysqlclient cannot reset a session in place: the connection is replaced")
        return False
