"""PostgreSQL over a bridge: Django's postgresql DatabaseWrapper without psycopg connections."""

from __future__ import annotations

from typing import Any

from ..hooks import PostgresServerHooks, PostgresSessionMixin
from .wrapper import BridgePoolHooks, BridgeWrapperMixin

__all__ = ["PostgresBridgeMixin", "PostgresBridgePoolHooks"]


class PostgresBridgePoolHooks(PostgresServerHooks, PostgresSessionMixin, BridgePoolHooks):
    """Pool hooks of the postgresql bridges; put it before PoolingMixin."""


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
        # Django's reads the session's time zone from psycopg's connection.info:
        # ask the server. (PostgresSessionMixin handles a pooled session first.)
        timezone_name = self.timezone_name
        if not timezone_name:
            return False
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

    @property
    def pg_version(self) -> int:
        if self.__dict__.get("_bridge_pg_version") is None:
            with self.temporary_connection() as cursor:
                cursor.execute("SHOW server_version_num")
                self.__dict__["_bridge_pg_version"] = int(cursor.fetchone()[0])
        return int(self.__dict__["_bridge_pg_version"])
