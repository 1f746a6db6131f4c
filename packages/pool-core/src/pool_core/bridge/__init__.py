"""Django backends over a bridge driver: JDBC (JPype) or ODBC (pyodbc).

A bridge driver speaks to a server through a foreign API, so the parts of
Django's backends that expect the native driver (psycopg, MySQLdb) are
replaced here, once for every bridge:

- :mod:`.dbapi`: :class:`BridgeConnection` / :class:`BridgeCursor` wrap the
  driver's DB-API objects: Django's ``%s`` / ``%(name)s`` become ``?``
  (sqlparams), results come back as plain Python types, driver errors
  become this package's DB-API exceptions chosen by SQLSTATE (so Django
  re-raises them as the right ``django.db.utils`` class), and
  ``commit``/``rollback`` in autocommit mode are no-ops instead of errors.
- :mod:`.literals`: SQL literals for DDL and client-side composed SQL.
- :mod:`.wrapper`: :class:`BridgeWrapperMixin` (any vendor) and
  :class:`BridgePoolHooks`; :mod:`.postgresql`, :mod:`.mysql` and
  :mod:`.oracle` override the DatabaseWrapper methods of Django's backends
  that talk to the native driver.

A *driver* object (see :class:`BridgeDriver`) supplies the few
driver-specific facts. Nothing here imports a driver.
"""

from __future__ import annotations

from .._masking import mask_password
from .dbapi import (
    BridgeConnection,
    BridgeCursor,
    BridgeDriver,
    Database,
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
    error_class,
    make_error,
)
from .literals import ComposeSqlMixin, MySQLQuoteValueMixin, QuoteValueMixin, compose_sql, literal, pg_literal
from .mysql import MySQLBridgeMixin, MySQLBridgePoolHooks, install_mysqldb_if_needed
from .oracle import OracleBridgeMixin, OracleBridgePoolHooks
from .postgresql import PostgresBridgeMixin, PostgresBridgePoolHooks
from .wrapper import BridgePoolHooks, BridgeWrapperMixin

__all__ = [
    "BridgeConnection",
    "BridgeCursor",
    "BridgeDriver",
    "BridgePoolHooks",
    "BridgeWrapperMixin",
    "ComposeSqlMixin",
    "DataError",
    "Database",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "MySQLBridgeMixin",
    "MySQLBridgePoolHooks",
    "MySQLQuoteValueMixin",
    "NotSupportedError",
    "OperationalError",
    "OracleBridgeMixin",
    "OracleBridgePoolHooks",
    "PostgresBridgeMixin",
    "PostgresBridgePoolHooks",
    "ProgrammingError",
    "QuoteValueMixin",
    "Warning",
    "compose_sql",
    "error_class",
    "install_mysqldb_if_needed",
    "literal",
    "make_error",
    "mask_password",
    "pg_literal",
]
