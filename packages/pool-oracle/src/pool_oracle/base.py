"""ENGINE ``pool_oracle``: Django's Oracle backend, pooled."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.backends.oracle import base
from django.utils.asyncio import async_unsafe

from pool_core.hooks import mask_credentials
from pool_core.mixin import PoolingMixin

from ._driver import Database, OracleHooks, build_dsn


class OracleWrapper(base.DatabaseWrapper):
    """Django's Oracle wrapper with the DSN forms of :func:`build_dsn`."""

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params.pop("service_name", None)
        return params

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        return Database.connect(
            user=self.settings_dict["USER"],
            password=self.settings_dict["PASSWORD"],
            dsn=build_dsn(self.settings_dict),
            **conn_params,
        )


class DatabaseWrapper(OracleHooks, PoolingMixin, OracleWrapper):
    # LIKE operators chosen by init_connection_state, per alias: a wrapper
    # that reuses a pooled connection skips init_connection_state.
    _pool_operators: ClassVar[dict[str, tuple[Any, Any]]] = {}

    def pool_key_extra(self) -> tuple[Any, ...]:
        # conn_params holds only OPTIONS: the login and DSN go in the key.
        s = self.settings_dict
        return (build_dsn(s), s["USER"], s["PASSWORD"], self.timezone_name)

    def pool_description(self, conn_params: dict[str, Any]) -> str:
        # NAME may be python-oracledb's "user/password@connect_string".
        user = self.settings_dict.get("USER") or ""
        text = f"{self.pool_vendor_name} {user}@{build_dsn(self.settings_dict)}"
        return mask_credentials(text, self.settings_dict.get("PASSWORD"))

    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        cached = self._pool_operators.get(self.alias)
        if cached is not None and "operators" not in self.__dict__:
            self.operators, self.pattern_ops = cached

    def init_connection_state(self) -> None:
        super().init_connection_state()
        if "operators" in self.__dict__:
            self._pool_operators[self.alias] = (self.operators, self.pattern_ops)
