"""ENGINE ``pool_postgresql``: Django's PostgreSQL backend, pooled."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import IsolationLevel

from pool_core.mixin import PoolingMixin

from ._driver import PostgresHooks


class PostgresPoolingMixin(PostgresHooks, PoolingMixin):
    """PostgreSQL specifics of the pooling mixin, shared by every pg ENGINE."""

    def pool_key_extra(self) -> tuple[Any, ...]:
        options = self.settings_dict["OPTIONS"]
        return (self.timezone_name, options.get("assume_role"), options.get("isolation_level"))

    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        # Django's get_new_connection sets this on the wrapper; a reused
        # connection skips that, so set it the same way here.
        level = self.settings_dict["OPTIONS"].get("isolation_level")
        self.isolation_level = IsolationLevel.READ_COMMITTED if level is None else IsolationLevel(level)

    def _set_autocommit(self, autocommit: bool) -> None:
        # Django's connect() sets autocommit on every checkout. A pooled
        # connection comes back in the mode Django left it, and psycopg 3's
        # setter takes the connection lock and runs a generator even when
        # nothing changes: skip it when the driver already agrees (a local read).
        if self.connection.autocommit != autocommit:
            super()._set_autocommit(autocommit)

    def ensure_timezone(self) -> bool:
        # Django closes its own pool here; ours is keyed by the time zone, so
        # the next checkout gets a pool with the new setting.
        if self.connection is None:
            return False
        return self._configure_timezone(self.connection)


class DatabaseWrapper(PostgresPoolingMixin, base.DatabaseWrapper):
    pool_supports_transaction_checkout = True
