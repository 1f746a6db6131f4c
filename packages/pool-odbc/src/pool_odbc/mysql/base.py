"""ENGINE ``pool_odbc.mysql``: Django's MySQL backend over ODBC, pooled.

Django's mysql backend imports ``MySQLdb``; PyMySQL is installed under that
name when mysqlclient is absent (``pip install pool-odbc[mysql]``).
Default ODBC driver: ``MariaDB Unicode`` (MariaDB Connector/ODBC).
"""

from __future__ import annotations

from typing import Any

from pool_core.bridge.literals import MySQLQuoteValueMixin
from pool_core.bridge.mysql import MySQLBridgeMixin, MySQLBridgePoolHooks
from pool_core.hooks import install_mysqldb_if_needed
from pool_core.mixin import PoolingMixin

from .._driver import ODBCWrapperMixin

install_mysqldb_if_needed()

from django.db.backends.mysql import base, schema  # noqa: E402


class DatabaseSchemaEditor(MySQLQuoteValueMixin, schema.DatabaseSchemaEditor):
    pass


class ODBCMySQLWrapper(ODBCWrapperMixin, MySQLBridgeMixin, base.DatabaseWrapper):
    """Unpooled: Django's MySQL wrapper with ODBC connections."""

    odbc_driver = "MariaDB Unicode"
    SchemaEditorClass = DatabaseSchemaEditor

    def odbc_configure(self, raw: Any) -> None:
        import pyodbc

        raw.setdecoding(pyodbc.SQL_CHAR, encoding="utf-8")
        raw.setdecoding(pyodbc.SQL_WCHAR, encoding="utf-8")
        raw.setencoding(encoding="utf-8")


class DatabaseWrapper(MySQLBridgePoolHooks, PoolingMixin, ODBCMySQLWrapper):
    pool_vendor_name = "mysql+odbc"
