"""MySQL over a bridge: Django's mysql DatabaseWrapper without MySQLdb connections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..hooks import MySQLServerHooks, install_mysqldb_if_needed
from .dbapi import BridgeCursor
from .wrapper import BridgePoolHooks, BridgeWrapperMixin

__all__ = ["MySQLBridgeMixin", "MySQLBridgePoolHooks", "install_mysqldb_if_needed"]


class MySQLBridgePoolHooks(MySQLServerHooks, BridgePoolHooks):
    """Pool hooks of the mysql bridges; put it before PoolingMixin."""

    @staticmethod
    def pool_reset_session(dbapi_connection: Any) -> bool:
        """COM_RESET_CONNECTION where the driver offers it, else False (replaced)."""
        reset = getattr(dbapi_connection.driver, "reset_session", None)
        return bool(reset(dbapi_connection.raw)) if reset is not None else False


class MySQLBridgeMixin(BridgeWrapperMixin):
    """Overrides for Django's mysql DatabaseWrapper over a bridge."""

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        # As Django's mysql backend: init_connection_state applies it.
        level = params["options"].get("isolation_level", "read committed")
        if level:
            level = str(level).lower()
            if level not in self.isolation_levels:  # type: ignore[attr-defined]
                from django.core.exceptions import ImproperlyConfigured

                raise ImproperlyConfigured(
                    f"Invalid transaction isolation level {level!r} specified. Use one of "
                    f"{', '.join(sorted(self.isolation_levels))}, or None."  # type: ignore[attr-defined]
                )
        self.isolation_level = level
        for key in ("isolation_level", "init_command", "charset", "read_default_file", "ssl", "unix_socket"):
            params["options"].pop(key, None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        self.bridge_driver.mysql_args = True
        connection = super().get_new_connection(conn_params)
        init = self.settings_dict["OPTIONS"].get("init_command")
        if init:
            with connection.cursor() as cursor:
                cursor.execute(init)
        return connection

    def create_cursor(self, name: str | None = None) -> Any:
        return _MySQLBridgeCursor(self.connection.cursor())


class _MySQLBridgeCursor:
    """Adds ``lastrowid`` (Django's MySQL backend reads it after INSERT)."""

    def __init__(self, cursor: BridgeCursor) -> None:
        self._c = cursor
        self._last_sql = ""

    def execute(self, sql: str, params: Any = None) -> Any:
        self._last_sql = sql
        return self._c.execute(sql, params)

    def executemany(self, sql: str, param_list: Sequence[Any]) -> Any:
        self._last_sql = sql
        return self._c.executemany(sql, param_list)

    def fetchmany(self, size: int | None = None) -> Any:
        # Django's MySQL features.empty_fetchmany_value is (), as MySQLdb's.
        return tuple(self._c.fetchmany(size))

    @property
    def lastrowid(self) -> Any:
        if not self._last_sql.lstrip()[:6].upper() == "INSERT":
            return None
        cursor = self._c.connection.cursor()
        try:
            cursor.execute("SELECT LAST_INSERT_ID()")
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else int(row[0])

    def __iter__(self) -> Any:
        return iter(self._c)

    def __enter__(self) -> _MySQLBridgeCursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._c.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)
