"""ENGINE ``pool_jdbc.mysql``: Django's MySQL backend over JDBC, pooled.

Django's mysql backend imports ``MySQLdb``; PyMySQL is installed under that
name when mysqlclient is absent (``pip install pool-jdbc[mysql]``).
Connections are JDBC: MySQL Connector/J by default
(``com.mysql.cj.jdbc.Driver``), or MariaDB Connector/J with
``OPTIONS['JDBC_DRIVER'] = 'org.mariadb.jdbc.Driver'``.
"""

from __future__ import annotations

from pool_core.bridge.mysql import MySQLBridgeMixin, MySQLBridgePoolHooks
from pool_core.hooks import install_mysqldb_if_needed
from pool_core.mixin import PoolingMixin

from .._driver import JDBCWrapperMixin

install_mysqldb_if_needed()

from django.db.backends.mysql import base, schema  # noqa: E402

from pool_core.bridge.literals import MySQLQuoteValueMixin  # noqa: E402


class DatabaseSchemaEditor(MySQLQuoteValueMixin, schema.DatabaseSchemaEditor):
    pass


class JDBCMySQLWrapper(JDBCWrapperMixin, MySQLBridgeMixin, base.DatabaseWrapper):
    """Unpooled: Django's MySQL wrapper with JDBC connections."""

    jdbc_driver = "com.mysql.cj.jdbc.Driver"
    jdbc_url_prefix = "jdbc:mysql://"
    SchemaEditorClass = DatabaseSchemaEditor


class DatabaseWrapper(MySQLBridgePoolHooks, PoolingMixin, JDBCMySQLWrapper):
    pool_vendor_name = "mysql+jdbc"
