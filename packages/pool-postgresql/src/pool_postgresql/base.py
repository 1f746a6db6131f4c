"""ENGINE ``pool_postgresql``: Django's PostgreSQL backend, pooled."""

from __future__ import annotations

from django.db.backends.postgresql import base

from pool_core.hooks import PostgresSessionMixin
from pool_core.mixin import PoolingMixin

from ._driver import PostgresHooks


class PostgresPoolingMixin(PostgresHooks, PostgresSessionMixin, PoolingMixin):
    """PostgreSQL specifics of the pooling mixin, shared by every pg ENGINE."""

    def _set_autocommit(self, autocommit: bool) -> None:
        # Django's connect() sets autocommit on every checkout. A pooled
        # connection comes back in the mode Django left it, and psycopg 3's
        # setter takes the connection lock and runs a generator even when
        # nothing changes: skip it when the driver already agrees (a local read).
        if self.connection.autocommit != autocommit:
            super()._set_autocommit(autocommit)


class DatabaseWrapper(PostgresPoolingMixin, base.DatabaseWrapper):
    pool_supports_transaction_checkout = True
