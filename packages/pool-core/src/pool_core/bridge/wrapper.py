"""The DatabaseWrapper overrides and pool hooks every bridge shares, whatever the server."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from ..hooks import PoolHooks, TransactionState
from .dbapi import BridgeConnection, BridgeDriver, Database

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper as _DjangoWrapper
else:
    _DjangoWrapper = object

__all__ = ["BridgePoolHooks", "BridgeWrapperMixin"]


class BridgeWrapperMixin(_DjangoWrapper):
    """Generic overrides; put it before Django's DatabaseWrapper in the bases.

    Subclasses implement :meth:`bridge_connect` (conn_params -> raw
    connection) and set :attr:`bridge_driver`.
    """

    Database = Database
    bridge_driver: BridgeDriver = BridgeDriver()
    #: OPTIONS keys consumed by the bridge itself (not driver properties).
    bridge_option_keys: tuple[str, ...] = ()
    #: The liveness check of is_usable() and of BridgePoolHooks.pool_ping
    #: (OracleServerHooks: with FROM DUAL).
    ping_sql = "SELECT 1"

    if TYPE_CHECKING:
        # Set by Django's BaseDatabaseWrapper, which comes later in the bases.
        settings_dict: dict[str, Any]
        connection: Any
        wrap_database_errors: Any
        ops: Any
        features: Any

    def bridge_connect(self, conn_params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def bridge_driver_options(self) -> dict[str, Any]:
        """OPTIONS minus the keys the bridge and Django consume."""
        options = dict(self.settings_dict.get("OPTIONS") or {})
        for key in self.bridge_option_keys:
            options.pop(key, None)
        return options

    def get_connection_params(self) -> dict[str, Any]:
        s = self.settings_dict
        return {
            "host": s.get("HOST") or "",
            "port": s.get("PORT") or "",
            "database": s.get("NAME") or self.bridge_default_database(),
            "user": s.get("USER") or "",
            "password": s.get("PASSWORD") or "",
            "options": self.bridge_driver_options(),
        }

    def bridge_default_database(self) -> str:
        return ""

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        raw = self.bridge_connect(conn_params)
        return BridgeConnection(raw, self.bridge_driver)

    def create_cursor(self, name: str | None = None) -> Any:
        # Server-side (named) cursors are a native-driver feature: a bridge
        # always fetches through a plain cursor.
        return self.connection.cursor()

    def chunked_cursor(self) -> Any:
        return self._cursor()  # type: ignore[attr-defined]

    def _set_autocommit(self, autocommit: bool) -> None:
        with self.wrap_database_errors:
            self.connection.autocommit = autocommit

    def is_usable(self) -> bool:
        if self.connection is None:
            return False
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(self.ping_sql)
                cursor.fetchall()
        except Exception:
            return False
        return True


class BridgePoolHooks(PoolHooks):
    """Pool hooks for bridge connections; put it before PoolingMixin."""

    if TYPE_CHECKING:
        # From the DatabaseWrapper side of the final class (BridgeWrapperMixin, OracleServerHooks).
        ping_sql: ClassVar[str]

    @staticmethod
    def pool_connect_timeout_params(conn_params: dict[str, Any], seconds: float) -> dict[str, Any]:
        """CONNECT_TIMEOUT as whole seconds; the bridge maps it to its driver's setting."""
        conn_params.setdefault("connect_timeout", max(1, math.ceil(seconds)))
        return conn_params

    @classmethod
    def pool_connect_timeout_max(cls) -> int | None:
        """JDBC: Java's Socket.connect takes an int of milliseconds (pgJDBC's
        connectTimeout in seconds is multiplied by 1000 into one); ODBC: the
        login timeout is an SQLUINTEGER, kept to a C int here."""
        if hasattr(cls, "jdbc_connect_timeout"):
            return 2147483647 // 1000
        return 2147483647

    @staticmethod
    def pool_driver_autocommit(dbapi_connection: Any) -> bool | None:
        """The driver's own autocommit flag (JDBC getAutoCommit / ODBC attribute, no round trip)."""
        try:
            return bool(dbapi_connection.autocommit)
        except Exception:
            return None

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> TransactionState:
        try:
            if dbapi_connection.closed:
                return TransactionState.BROKEN
            return TransactionState.IDLE if dbapi_connection.autocommit else TransactionState.UNKNOWN
        except Exception:
            return TransactionState.BROKEN

    @classmethod
    def pool_ping(cls, dbapi_connection: Any) -> bool:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(cls.ping_sql)
            cursor.fetchall()
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()
        return True

    @staticmethod
    def pool_fileno(dbapi_connection: Any) -> int | None:
        # No socket is reachable from Python: after a fork the connection is
        # kept alive (never closed, never used) in the child.
        return None
