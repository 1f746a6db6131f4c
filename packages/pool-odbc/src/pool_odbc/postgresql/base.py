"""ENGINE ``pool_odbc.postgresql``: Django's PostgreSQL backend over ODBC (psqlODBC), pooled.

Django's postgresql backend modules import psycopg (or psycopg2) for their
SQL helpers, so one of them must be installed; connections are ODBC.
Not available through ODBC: server-side cursors, ``COPY``,
psycopg-specific ``OPTIONS``.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base, operations, schema

from pool_core.bridge.literals import ComposeSqlMixin, QuoteValueMixin
from pool_core.bridge.postgresql import PostgresBridgeMixin, PostgresBridgePoolHooks
from pool_core.mixin import PoolingMixin

from .._driver import ODBCWrapperMixin


class DatabaseOperations(ComposeSqlMixin, operations.DatabaseOperations):
    pass


class DatabaseSchemaEditor(QuoteValueMixin, schema.DatabaseSchemaEditor):
    pass


class ODBCPostgresWrapper(ODBCWrapperMixin, PostgresBridgeMixin, base.DatabaseWrapper):
    """Unpooled: Django's PostgreSQL wrapper with ODBC connections."""

    odbc_driver = "PostgreSQL Unicode"
    odbc_aware_datetimes = True

    def bridge_driver_options(self) -> dict[str, Any]:
        # Bind parameters client-side, typed by value: server-side prepare
        # cannot type "SELECT ? + ?" (psycopg binds client-side too).
        return {"UseServerSidePrepare": 0, **super().bridge_driver_options()}
    ops_class = DatabaseOperations
    SchemaEditorClass = DatabaseSchemaEditor


class DatabaseWrapper(PostgresBridgePoolHooks, PoolingMixin, ODBCPostgresWrapper):
    pool_vendor_name = "postgresql+odbc"
