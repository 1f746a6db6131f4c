"""ENGINE ``pool_jdbc.postgresql``: Django's PostgreSQL backend over JDBC (pgJDBC), pooled.

Django's postgresql backend modules import psycopg (or psycopg2) for their
SQL helpers, so one of them must be installed; connections are JDBC.
Not available through JDBC: server-side cursors (``iterator()`` fetches
through a plain cursor), ``COPY``, psycopg-specific ``OPTIONS``.
"""

from __future__ import annotations

from django.db.backends.postgresql import base, operations, schema

from pool_core.bridge.literals import ComposeSqlMixin, QuoteValueMixin
from pool_core.bridge.postgresql import PostgresBridgeMixin, PostgresBridgePoolHooks
from pool_core.mixin import PoolingMixin

from .._driver import JDBCWrapperMixin


class DatabaseOperations(ComposeSqlMixin, operations.DatabaseOperations):
    pass


class DatabaseSchemaEditor(QuoteValueMixin, schema.DatabaseSchemaEditor):
    pass


class JDBCPostgresWrapper(JDBCWrapperMixin, PostgresBridgeMixin, base.DatabaseWrapper):
    """Unpooled: Django's PostgreSQL wrapper with JDBC connections."""

    jdbc_driver = "org.postgresql.Driver"
    jdbc_url_prefix = "jdbc:postgresql://"
    # Send strings untyped so PostgreSQL infers uuid, json, inet, ... as
    # psycopg's literals would be.
    jdbc_default_properties = {"stringtype": "unspecified"}
    jdbc_connect_timeout = ("connectTimeout", 1)  # pgJDBC: seconds
    ops_class = DatabaseOperations
    SchemaEditorClass = DatabaseSchemaEditor


class DatabaseWrapper(PostgresBridgePoolHooks, PoolingMixin, JDBCPostgresWrapper):
    pool_vendor_name = "postgresql+jdbc"
