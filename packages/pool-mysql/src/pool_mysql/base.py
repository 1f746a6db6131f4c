"""ENGINE ``pool_mysql``: Django's MySQL/MariaDB backend, pooled."""

from __future__ import annotations

from typing import Any

from pool_core.hooks import install_mysqldb_if_needed

from ._driver import MySQLHooks

install_mysqldb_if_needed(missing_ok=False)

from django.db.backends.mysql import base  # noqa: E402

from pool_core.mixin import PoolingMixin  # noqa: E402


class DatabaseWrapper(MySQLHooks, PoolingMixin, base.DatabaseWrapper):
    pool_supports_transaction_checkout = True

    def is_usable(self) -> bool:
        # Django's calls ping(), which PyMySQL before 1.1.2 lets reconnect: a
        # dead session was swapped for a new one under the pool (its record of
        # the socket, for QUERY_TIMEOUT, then stale). Say no; the pool discards it.
        if self.connection is None:
            return False
        try:
            self.pool_ping(self.connection)
        except base.Database.Error:
            return False
        return True

    def _pool_connect_physical(self, conn_params: dict[str, Any]) -> Any:
        connection = super()._pool_connect_physical(conn_params)
        self.pool_after_connect(connection, conn_params)
        return connection
