"""Oracle over a bridge (Oracle, OceanBase Oracle mode): Django's oracle DatabaseWrapper without oracledb connections."""

from __future__ import annotations

from typing import Any

from ..hooks import OracleServerHooks
from .wrapper import BridgePoolHooks, BridgeWrapperMixin

__all__ = ["OracleBridgeMixin", "OracleBridgePoolHooks"]


class OracleBridgePoolHooks(BridgePoolHooks):
    """Pool hooks of the Oracle-mode bridges; put it before PoolingMixin.

    The ping's ``FROM DUAL`` comes from OracleBridgeMixin (OracleServerHooks)
    on the DatabaseWrapper side: a server class on both sides of PoolingMixin
    would put these hooks after PoolingMixin's defaults in the MRO.
    """


class OracleBridgeMixin(OracleServerHooks, BridgeWrapperMixin):
    """Overrides for Django's oracle DatabaseWrapper over a bridge (Oracle, OceanBase Oracle mode).

    Not available over a bridge: ``RETURNING ... INTO`` output variables
    (``use_returning_into`` is forced off: ids are read back with a query),
    ``cursor.var()``, the driver's statement cache, and the LIKEC fallback
    for very old servers.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.features.can_return_columns_from_insert = False

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        for key in ("threaded", "use_returning_into", "service_name", "pool"):
            params["options"].pop(key, None)
        return params

    def init_connection_state(self) -> None:
        # Django's Oracle set-up, minus what only the native driver has.
        from django.conf import settings
        from django.db.backends.base.base import BaseDatabaseWrapper

        BaseDatabaseWrapper.init_connection_state(self)
        with self.connection.cursor() as cursor:
            cursor.execute("ALTER SESSION SET NLS_TERRITORY = 'AMERICA'")
            cursor.execute(
                "ALTER SESSION SET NLS_DATE_FORMAT = 'YYYY-MM-DD HH24:MI:SS'"
                " NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF'"
                + (" TIME_ZONE = 'UTC'" if settings.USE_TZ else "")
            )
        self.operators = self._standard_operators  # type: ignore[attr-defined]
        self.pattern_ops = self._standard_pattern_ops  # type: ignore[attr-defined]
        if not self.get_autocommit():
            self.connection.commit()

    @property
    def oracle_version(self) -> tuple[int, ...]:
        if self.__dict__.get("_bridge_oracle_version") is None:
            import re

            with self.temporary_connection() as cursor:
                cursor.execute("SELECT version FROM product_component_version WHERE ROWNUM = 1")
                text = str(cursor.fetchone()[0])
            self.__dict__["_bridge_oracle_version"] = tuple(int(x) for x in re.findall(r"\d+", text)[:5])
        return tuple(self.__dict__["_bridge_oracle_version"])
