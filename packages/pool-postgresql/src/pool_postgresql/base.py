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
        # Django sets the isolation level when it connects, and never resets a role.
        options = self.settings_dict["OPTIONS"]
        return (options.get("assume_role"), options.get("isolation_level"))

    def pool_session_signature(self) -> tuple[Any, ...]:
        # The time zone: init_connection_state() applies it again (and
        # _configure_timezone() below resets one it cannot set).
        return (self.timezone_name,)

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
        # Django closes its own pool here; ours re-runs the set-up of a
        # connection whose session time zone differs from the checkout's.
        if self.connection is None:
            return False
        changed = self._configure_timezone(self.connection)
        self._pool_session_applied()
        return changed

    def _configure_timezone(self, connection: Any) -> bool:
        recorded = self._pool_recorded_session()
        if not self.timezone_name and recorded and recorded[0]:
            # Django sets no time zone then (the server's applies); a pooled
            # session may carry one set under other settings.
            with connection.cursor() as cursor:
                cursor.execute("RESET TIME ZONE")
            return True
        return bool(super()._configure_timezone(connection))


class DatabaseWrapper(PostgresPoolingMixin, base.DatabaseWrapper):
    pool_supports_transaction_checkout = True
