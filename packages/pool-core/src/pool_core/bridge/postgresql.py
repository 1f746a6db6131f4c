"""PostgreSQL over a bridge: Django's postgresql DatabaseWrapper without psycopg connections."""

from __future__ import annotations

from typing import Any

from ..hooks import PostgresServerHooks
from .wrapper import BridgePoolHooks, BridgeWrapperMixin

__all__ = ["PostgresBridgeMixin", "PostgresBridgePoolHooks"]


class PostgresBridgePoolHooks(PostgresServerHooks, BridgePoolHooks):
    """Pool hooks of the postgresql bridges; put it before PoolingMixin."""

    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        from django.db.backends.postgresql.psycopg_any import IsolationLevel

        level = self.settings_dict["OPTIONS"].get("isolation_level")  # type: ignore[attr-defined]
        self.isolation_level = IsolationLevel.READ_COMMITTED if level is None else IsolationLevel(level)

    def pool_key_extra(self) -> tuple[Any, ...]:
        options = self.settings_dict["OPTIONS"]  # type: ignore[attr-defined]
        return (options.get("assume_role"), options.get("isolation_level"))

    def pool_session_signature(self) -> tuple[Any, ...]:
        return (self.timezone_name,)  # type: ignore[attr-defined]


class PostgresBridgeMixin(BridgeWrapperMixin):
    """Overrides for Django's postgresql DatabaseWrapper over a bridge."""

    def bridge_default_database(self) -> str:
        return "postgres"

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        for key in ("assume_role", "isolation_level", "server_side_binding", "pool", "prepare_threshold"):
            params["options"].pop(key, None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        self.pool_adopt_connection(connection)  # type: ignore[attr-defined]
        level = self.settings_dict["OPTIONS"].get("isolation_level")
        if level is not None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL "
                    + self.isolation_level.name.replace("_", " ")  # type: ignore[attr-defined]
                )
        return connection

    def _configure_timezone(self, connection: Any) -> bool:
        timezone_name = self.timezone_name  # type: ignore[attr-defined]
        if not timezone_name:
            recorded = self._pool_recorded_session()  # type: ignore[attr-defined]
            if not (recorded and recorded[0]):
                return False
            # A pooled session set up under another time zone: the server's again.
            with connection.cursor() as cursor:
                cursor.execute("RESET TIME ZONE")
            return True
        with connection.cursor() as cursor:
            cursor.execute("SHOW TIME ZONE")
            current = cursor.fetchone()[0]
            if current == timezone_name:
                return False
            cursor.execute(self.ops.set_time_zone_sql(), [timezone_name])
        return True

    def _configure_role(self, connection: Any) -> bool:
        new_role = self.settings_dict["OPTIONS"].get("assume_role")
        if not new_role:
            return False
        with connection.cursor() as cursor:
            role = str(new_role).replace('"', '""')
            cursor.execute(f'SET ROLE "{role}"')
        return True

    def ensure_timezone(self) -> bool:
        if self.connection is None:
            return False
        changed = self._configure_timezone(self.connection)
        self._pool_session_applied()  # type: ignore[attr-defined]
        return changed

    @property
    def pg_version(self) -> int:
        if self.__dict__.get("_bridge_pg_version") is None:
            with self.temporary_connection() as cursor:  # type: ignore[attr-defined]
                cursor.execute("SHOW server_version_num")
                self.__dict__["_bridge_pg_version"] = int(cursor.fetchone()[0])
        return int(self.__dict__["_bridge_pg_version"])
