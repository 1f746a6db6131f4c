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

    def _pool_connect_physical(self, conn_params: dict[str, Any]) -> Any:
        connection = super()._pool_connect_physical(conn_params)
        self.pool_after_connect(connection, conn_params)
        return connection
