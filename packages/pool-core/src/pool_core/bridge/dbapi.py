"""Django backends over a bridge driver: JDBC (JPype) or ODBC (pyodbc).

A bridge driver speaks to a server through a foreign API, so the parts of
Django's backends that expect the native driver (psycopg, MySQLdb) are
replaced here, once for every bridge:

- :class:`BridgeConnection` / :class:`BridgeCursor` wrap the driver's DB-API
  objects: Django's ``%s`` / ``%(name)s`` become ``?`` (sqlparams), results
  come back as plain Python types, driver errors become this module's
  DB-API exceptions chosen by SQLSTATE (so Django re-raises them as the
  right ``django.db.utils`` class), and ``commit``/``rollback`` in
  autocommit mode are no-ops instead of errors.
- :class:`BridgeWrapperMixin` (any vendor), :class:`PostgresBridgeMixin`
  and :class:`MySQLBridgeMixin` override the DatabaseWrapper methods of
  Django's postgresql and mysql backends that talk to the native driver.

A *driver* object (see :class:`BridgeDriver`) supplies the few
driver-specific facts. Nothing here imports a driver.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._masking import mask_password
from ..cursor import convert
from ..hooks import MySQLServerHooks, PostgresServerHooks

__all__ = [
    "BridgeConnection",
    "BridgeCursor",
    "BridgeDriver",
    "BridgePoolHooks",
    "BridgeWrapperMixin",
    "Database",
    "MySQLBridgeMixin",
    "MySQLBridgePoolHooks",
    "PostgresBridgeMixin",
    "PostgresBridgePoolHooks",
    "compose_sql",
    "error_class",
    "literal",
    "mask_password",
    "pg_literal",
]


# -- DB-API exceptions ------------------------------------------------------


class Warning(Exception):  # noqa: A001 - the DB-API name
    __module__ = "pool_core.bridge"


class Error(Exception):
    __module__ = "pool_core.bridge"

    #: The SQLSTATE the driver reported, if any.
    sqlstate: str | None = None


class InterfaceError(Error):
    __module__ = "pool_core.bridge"


class DatabaseError(Error):
    __module__ = "pool_core.bridge"


class DataError(DatabaseError):
    __module__ = "pool_core.bridge"


class OperationalError(DatabaseError):
    __module__ = "pool_core.bridge"


class IntegrityError(DatabaseError):
    __module__ = "pool_core.bridge"


class InternalError(DatabaseError):
    __module__ = "pool_core.bridge"


class ProgrammingError(DatabaseError):
    __module__ = "pool_core.bridge"


class NotSupportedError(DatabaseError):
    __module__ = "pool_core.bridge"


class Database:
    """The DB-API "module" Django sees as ``DatabaseWrapper.Database``."""

    apilevel = "2.0"
    paramstyle = "format"
    threadsafety = 1
    Warning = Warning
    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError


# SQLSTATE class (first two characters) -> exception, as psycopg maps them.
_BY_CLASS: dict[str, type[Error]] = {
    "08": OperationalError,  # connection exception
    "57": OperationalError,  # operator intervention (admin shutdown, cancel)
    "53": OperationalError,  # insufficient resources
    "54": OperationalError,
    "55": OperationalError,
    "58": OperationalError,
    "40": OperationalError,  # serialization failure, deadlock
    "HY": OperationalError,  # ODBC: driver/manager-level failure (timeouts, link)
    "28": OperationalError,  # invalid authorization (wrong password)
    "23": IntegrityError,
    "22": DataError,
    "42": ProgrammingError,
    "3F": ProgrammingError,
    "0A": NotSupportedError,
    "25": InternalError,  # invalid transaction state
    "XX": InternalError,
}


def error_class(sqlstate: str | None) -> type[Error]:
    """The exception class for *sqlstate* (DatabaseError when unknown)."""
    if not sqlstate:
        return DatabaseError
    return _BY_CLASS.get(sqlstate[:2].upper(), DatabaseError)


def make_error(message: str, sqlstate: str | None, cls: type[Error] | None = None) -> Error:
    err = (cls or error_class(sqlstate))(message)
    err.sqlstate = sqlstate
    return err


# -- SQL literals (for compose_sql / quote_value) ----------------------------


def literal(value: Any) -> str:
    """*value* as a standard SQL literal (for DDL, where no parameters bind)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "X'" + bytes(value).hex() + "'"
    if isinstance(value, datetime.datetime):
        return "'" + value.isoformat(sep=" ") + "'"
    if isinstance(value, (datetime.date, datetime.time)):
        return "'" + value.isoformat() + "'"
    if isinstance(value, uuid.UUID):
        value = str(value)
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(literal(v) for v in value) + ")"
    return "'" + str(value).replace("'", "''") + "'"


def pg_literal(value: Any) -> str:
    """*value* as a PostgreSQL literal (bytea as ``'\\x…'::bytea``, lists as arrays)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "'\\x" + bytes(value).hex() + "'::bytea"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(pg_literal(v) for v in value) + "]"
    return literal(value)


def compose_sql(sql: str, params: Any, quote: Any = None) -> str:
    """Merge *params* into *sql* (``%s`` / ``%(name)s``) as literals."""
    if params is None:
        return sql
    quote = quote or literal
    if isinstance(params, dict):
        return sql % {k: quote(v) for k, v in params.items()}
    return sql % tuple(quote(v) for v in params)


# -- the driver protocol -----------------------------------------------------


class BridgeDriver:
    """What a bridge needs to know about its driver. Subclass per driver."""

    #: Exceptions the driver raises (caught and translated).
    errors: tuple[type[BaseException], ...] = ()

    def sqlstate(self, exc: BaseException) -> str | None:
        return None

    def message(self, exc: BaseException) -> str:
        return str(exc)

    def translate(self, exc: BaseException) -> Error:
        state = self.sqlstate(exc)
        return make_error(self.message(exc), state)

    def native_code(self, exc: BaseException) -> int | None:
        """The server's own error number (MySQL's 1062, ...), if known."""
        return None

    def finish(self, err: Error, exc: BaseException) -> Error:
        """Set ``args`` the way the native driver would (MySQL: (errno, message))."""
        err.__cause__ = exc
        if self.mysql_args:
            code = self.native_code(exc)
            if code is not None:
                err.args = (code, *err.args)
        return err

    #: Set by the MySQL mixins: Django's MySQL backend reads e.args[0] as errno.
    mysql_args = False

    def get_autocommit(self, raw: Any) -> bool:
        return bool(raw.autocommit)

    def set_autocommit(self, raw: Any, value: bool) -> None:
        raw.autocommit = value

    def check_usable(self, raw: Any) -> None:
        """Raise (a bridge Error) if *raw* must not be used in this process."""

    def adapt_param(self, value: Any) -> Any:
        return value

    def convert_value(self, value: Any) -> Any:
        return value

    def column_converter(self, type_code: Any) -> Any:
        """A callable for every value of a column of *type_code*, or None."""
        return None

    def is_closed(self, raw: Any) -> bool:
        return False


class BridgeCursor:
    """A DB-API cursor proxy: qmark parameters, Python results, bridge errors."""

    def __init__(self, connection: BridgeConnection, raw_cursor: Any) -> None:
        self.connection = connection
        self._cursor = raw_cursor
        self._driver = connection.driver
        self._converters: list[Any] | None = None

    def _translate(self, exc: BaseException) -> Error:
        return self._driver.finish(self._driver.translate(exc), exc)

    def _params(self, params: Any) -> Any:
        if params is None:
            return None
        adapt = self._driver.adapt_param
        return [adapt(p) for p in params]

    def execute(self, sql: str, params: Any = None) -> Any:
        self._driver.check_usable(self.connection.raw)
        if params is not None:
            # Without parameters the SQL goes as is ("%%" stays), as with psycopg and MySQLdb.
            sql, params = convert(sql, params, "qmark")
        params = self._params(params)
        try:
            if params is None:
                self._cursor.execute(sql)
            else:
                self._cursor.execute(sql, params)
        except self._driver.errors as e:
            raise self._translate(e) from e
        self._converters = None
        self.connection.on_execute(sql)
        return self

    def executemany(self, sql: str, param_list: Iterable[Any]) -> Any:
        self._driver.check_usable(self.connection.raw)
        rows = list(param_list)
        if not rows:
            return None
        converted = [convert(sql, p, "qmark") for p in rows]
        try:
            self._cursor.executemany(converted[0][0], [self._params(p) for _, p in converted])
        except self._driver.errors as e:
            raise self._translate(e) from e
        self.connection.on_execute(converted[0][0])
        return self

    def _row(self, row: Any) -> tuple[Any, ...] | None:
        if row is None:
            return None
        conv = self._driver.convert_value
        if self._converters is None:
            column = self._driver.column_converter
            self._converters = [column(d[1]) for d in (self._cursor.description or ())]
        out = []
        for value, extra in zip(row, self._converters, strict=False):
            value = None if value is None else conv(value)
            if extra is not None and value is not None:
                value = extra(value)
            out.append(value)
        return tuple(out)

    def fetchone(self) -> tuple[Any, ...] | None:
        try:
            return self._row(self._cursor.fetchone())
        except self._driver.errors as e:
            raise self._translate(e) from e

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        try:
            rows = self._cursor.fetchmany(size or self.arraysize)
        except self._driver.errors as e:
            raise self._translate(e) from e
        return [self._row(r) for r in rows]  # type: ignore[misc]

    def fetchall(self) -> list[tuple[Any, ...]]:
        try:
            rows = self._cursor.fetchall()
        except self._driver.errors as e:
            raise self._translate(e) from e
        return [self._row(r) for r in rows]  # type: ignore[misc]

    def __iter__(self) -> Any:
        while True:
            row = self.fetchone()
            if row is None:
                return
            yield row

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def arraysize(self) -> int:
        return int(getattr(self._cursor, "arraysize", 100) or 100)

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def nextset(self) -> Any:
        try:
            return self._cursor.nextset()
        except self._driver.errors as e:
            raise self._translate(e) from e

    def close(self) -> None:
        try:
            self._cursor.close()
        except Exception:
            pass

    def __enter__(self) -> BridgeCursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class BridgeConnection:
    """A DB-API connection proxy over *raw*, the bridge driver's connection."""

    cursor_class = BridgeCursor

    def __init__(self, raw: Any, driver: BridgeDriver) -> None:
        self.raw = raw
        self.driver = driver

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {type(self.driver).__name__}>"

    def _translate(self, exc: BaseException) -> Error:
        return self.driver.finish(self.driver.translate(exc), exc)

    def on_execute(self, sql: str) -> None:
        """Called after each statement (vendor mixins may track state)."""

    @property
    def autocommit(self) -> bool:
        self.driver.check_usable(self.raw)
        try:
            return self.driver.get_autocommit(self.raw)
        except self.driver.errors as e:
            raise self._translate(e) from e

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self.driver.check_usable(self.raw)
        try:
            self.driver.set_autocommit(self.raw, bool(value))
        except self.driver.errors as e:
            raise self._translate(e) from e

    def cursor(self) -> BridgeCursor:
        self.driver.check_usable(self.raw)
        try:
            return self.cursor_class(self, self.raw.cursor())
        except self.driver.errors as e:
            raise self._translate(e) from e

    def commit(self) -> None:
        # JDBC raises on commit/rollback in autocommit mode; in that mode
        # there is nothing to end, so do nothing.
        if self.autocommit:
            return
        try:
            self.raw.commit()
        except self.driver.errors as e:
            raise self._translate(e) from e

    def rollback(self) -> None:
        if self.autocommit:
            return
        try:
            self.raw.rollback()
        except self.driver.errors as e:
            raise self._translate(e) from e

    @property
    def closed(self) -> bool:
        try:
            return self.driver.is_closed(self.raw)
        except Exception:
            return True

    def close(self) -> None:
        self.driver.check_usable(self.raw)
        try:
            self.raw.close()
        except self.driver.errors as e:
            raise self._translate(e) from e


# -- DatabaseWrapper mixins --------------------------------------------------


class BridgeWrapperMixin:
    """Generic overrides; put it before Django's DatabaseWrapper in the bases.

    Subclasses implement :meth:`bridge_connect` (conn_params -> raw
    connection) and set :attr:`bridge_driver`.
    """

    Database = Database
    bridge_driver: BridgeDriver = BridgeDriver()
    #: OPTIONS keys consumed by the bridge itself (not driver properties).
    bridge_option_keys: tuple[str, ...] = ()

    if TYPE_CHECKING:
        # Set by Django's BaseDatabaseWrapper, which comes later in the bases.
        settings_dict: dict[str, Any]
        connection: Any
        wrap_database_errors: Any
        ops: Any
        features: Any

    def bridge_connect(self, conn_params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def bridge_driver_options(self) -> dict[str, Any]:
        """OPTIONS minus the keys the bridge and Django consume."""
        options = dict(self.settings_dict.get("OPTIONS") or {})
        for key in self.bridge_option_keys:
            options.pop(key, None)
        return options

    def get_connection_params(self) -> dict[str, Any]:
        s = self.settings_dict
        return {
            "host": s.get("HOST") or "",
            "port": s.get("PORT") or "",
            "database": s.get("NAME") or self.bridge_default_database(),
            "user": s.get("USER") or "",
            "password": s.get("PASSWORD") or "",
            "options": self.bridge_driver_options(),
        }

    def bridge_default_database(self) -> str:
        return ""

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        raw = self.bridge_connect(conn_params)
        return BridgeConnection(raw, self.bridge_driver)

    def create_cursor(self, name: str | None = None) -> Any:
        # Server-side (named) cursors are a native-driver feature: a bridge
        # always fetches through a plain cursor.
        return self.connection.cursor()

    def chunked_cursor(self) -> Any:
        return self._cursor()  # type: ignore[attr-defined]

    def _set_autocommit(self, autocommit: bool) -> None:
        with self.wrap_database_errors:
            self.connection.autocommit = autocommit

    def is_usable(self) -> bool:
        if self.connection is None:
            return False
        try:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchall()
        except Exception:
            return False
        return True


class BridgePoolHooks:
    """Pool hooks for bridge connections; put it before PoolingMixin."""

    @staticmethod
    def pool_connect_timeout_params(conn_params: dict[str, Any], seconds: float) -> dict[str, Any]:
        """CONNECT_TIMEOUT as whole seconds; the bridge maps it to its driver's setting."""
        conn_params.setdefault("connect_timeout", max(1, math.ceil(seconds)))
        return conn_params

    @classmethod
    def pool_connect_timeout_max(cls) -> int | None:
        """JDBC: Java's Socket.connect takes an int of milliseconds (pgJDBC's
        connectTimeout in seconds is multiplied by 1000 into one); ODBC: the
        login timeout is an SQLUINTEGER, kept to a C int here."""
        if hasattr(cls, "jdbc_connect_timeout"):
            return 2147483647 // 1000
        return 2147483647

    @staticmethod
    def pool_driver_autocommit(dbapi_connection: Any) -> bool | None:
        """The driver's own autocommit flag (JDBC getAutoCommit / ODBC attribute, no round trip)."""
        try:
            return bool(dbapi_connection.autocommit)
        except Exception:
            return None

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> int:
        from ..pool import BROKEN, IDLE, UNKNOWN

        try:
            if dbapi_connection.closed:
                return BROKEN
            return IDLE if dbapi_connection.autocommit else UNKNOWN
        except Exception:
            return BROKEN

    @staticmethod
    def pool_ping(dbapi_connection: Any) -> bool:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()
        return True

    @staticmethod
    def pool_fileno(dbapi_connection: Any) -> int | None:
        # No socket is reachable from Python: after a fork the connection is
        # kept alive (never closed, never used) in the child.
        return None


class PostgresBridgePoolHooks(PostgresServerHooks, BridgePoolHooks):
    """Pool hooks of the postgresql bridges; put it before PoolingMixin."""

    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        from django.db.backends.postgresql.psycopg_any import IsolationLevel

        level = self.settings_dict["OPTIONS"].get("isolation_level")  # type: ignore[attr-defined]
        self.isolation_level = IsolationLevel.READ_COMMITTED if level is None else IsolationLevel(level)

    def pool_key_extra(self) -> tuple[Any, ...]:
        options = self.settings_dict["OPTIONS"]  # type: ignore[attr-defined]
        return (options.get("assume_role"), options.get("isolation_level"))

    def pool_session_signature(self) -> tuple[Any, ...]:
        return (self.timezone_name,)  # type: ignore[attr-defined]


class MySQLBridgePoolHooks(MySQLServerHooks, BridgePoolHooks):
    """Pool hooks of the mysql bridges; put it before PoolingMixin."""

    def pool_key_extra(self) -> tuple[Any, ...]:
        return (self.isolation_level,)  # type: ignore[attr-defined]

    @staticmethod
    def pool_reset_session(dbapi_connection: Any) -> bool:
        """COM_RESET_CONNECTION where the driver offers it, else False (replaced)."""
        reset = getattr(dbapi_connection.driver, "reset_session", None)
        return bool(reset(dbapi_connection.raw)) if reset is not None else False


class PostgresBridgeMixin(BridgeWrapperMixin):
    """Overrides for Django's postgresql DatabaseWrapper over a bridge."""

    def bridge_default_database(self) -> str:
        return "postgres"

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        for key in ("assume_role", "isolation_level", "server_side_binding", "pool", "prepare_threshold"):
            params["options"].pop(key, None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        self.pool_adopt_connection(connection)  # type: ignore[attr-defined]
        level = self.settings_dict["OPTIONS"].get("isolation_level")
        if level is not None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL "
                    + self.isolation_level.name.replace("_", " ")  # type: ignore[attr-defined]
                )
        return connection

    def _configure_timezone(self, connection: Any) -> bool:
        timezone_name = self.timezone_name  # type: ignore[attr-defined]
        if not timezone_name:
            recorded = self._pool_recorded_session()  # type: ignore[attr-defined]
            if not (recorded and recorded[0]):
                return False
            # A pooled session set up under another time zone: the server's again.
            with connection.cursor() as cursor:
                cursor.execute("RESET TIME ZONE")
            return True
        with connection.cursor() as cursor:
            cursor.execute("SHOW TIME ZONE")
            current = cursor.fetchone()[0]
            if current == timezone_name:
                return False
            cursor.execute(self.ops.set_time_zone_sql(), [timezone_name])
        return True

    def _configure_role(self, connection: Any) -> bool:
        new_role = self.settings_dict["OPTIONS"].get("assume_role")
        if not new_role:
            return False
        with connection.cursor() as cursor:
            role = str(new_role).replace('"', '""')
            cursor.execute(f'SET ROLE "{role}"')
        return True

    def ensure_timezone(self) -> bool:
        if self.connection is None:
            return False
        changed = self._configure_timezone(self.connection)
        self._pool_session_applied()  # type: ignore[attr-defined]
        return changed

    @property
    def pg_version(self) -> int:
        if self.__dict__.get("_bridge_pg_version") is None:
            with self.temporary_connection() as cursor:  # type: ignore[attr-defined]
                cursor.execute("SHOW server_version_num")
                self.__dict__["_bridge_pg_version"] = int(cursor.fetchone()[0])
        return int(self.__dict__["_bridge_pg_version"])


class MySQLBridgeMixin(BridgeWrapperMixin):
    """Overrides for Django's mysql DatabaseWrapper over a bridge."""

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        # As Django's mysql backend: init_connection_state applies it.
        level = params["options"].get("isolation_level", "read committed")
        if level:
            level = str(level).lower()
            if level not in self.isolation_levels:  # type: ignore[attr-defined]
                from django.core.exceptions import ImproperlyConfigured

                raise ImproperlyConfigured(
                    f"Invalid transaction isolation level {level!r} specified. Use one of "
                    f"{', '.join(sorted(self.isolation_levels))}, or None."  # type: ignore[attr-defined]
                )
        self.isolation_level = level
        for key in ("isolation_level", "init_command", "charset", "read_default_file", "ssl", "unix_socket"):
            params["options"].pop(key, None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        self.bridge_driver.mysql_args = True
        connection = super().get_new_connection(conn_params)
        init = self.settings_dict["OPTIONS"].get("init_command")
        if init:
            with connection.cursor() as cursor:
                cursor.execute(init)
        return connection

    def create_cursor(self, name: str | None = None) -> Any:
        return _MySQLBridgeCursor(self.connection.cursor())


class _MySQLBridgeCursor:
    """Adds ``lastrowid`` (Django's MySQL backend reads it after INSERT)."""

    def __init__(self, cursor: BridgeCursor) -> None:
        self._c = cursor
        self._last_sql = ""

    def execute(self, sql: str, params: Any = None) -> Any:
        self._last_sql = sql
        return self._c.execute(sql, params)

    def executemany(self, sql: str, param_list: Sequence[Any]) -> Any:
        self._last_sql = sql
        return self._c.executemany(sql, param_list)

    def fetchmany(self, size: int | None = None) -> Any:
        # Django's MySQL features.empty_fetchmany_value is (), as MySQLdb's.
        return tuple(self._c.fetchmany(size))

    @property
    def lastrowid(self) -> Any:
        if not self._last_sql.lstrip()[:6].upper() == "INSERT":
            return None
        cursor = self._c.connection.cursor()
        try:
            cursor.execute("SELECT LAST_INSERT_ID()")
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else int(row[0])

    def __iter__(self) -> Any:
        return iter(self._c)

    def __enter__(self) -> _MySQLBridgeCursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._c.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)


class ComposeSqlMixin:
    """DatabaseOperations: merge parameters client-side without psycopg."""

    def compose_sql(self, sql: str, params: Any) -> str:
        return compose_sql(sql, params, pg_literal)


class QuoteValueMixin:
    """BaseDatabaseSchemaEditor: quote DDL values without the native driver."""

    def quote_value(self, value: Any) -> str:
        return pg_literal(value)


class MySQLQuoteValueMixin:
    """MySQL's schema editor: quote values (backslashes escaped) without MySQLdb."""

    def quote_value(self, value: Any) -> str:
        if isinstance(value, str):
            return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
        if isinstance(value, bool):
            return "1" if value else "0"
        return literal(value)


def install_mysqldb_if_needed() -> None:
    """Django's mysql backend imports MySQLdb: use PyMySQL as MySQLdb if needed."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("MySQLdb") is None:
        try:
            pymysql = importlib.import_module("pymysql")
        except ImportError:
            return  # Django reports the missing driver
        pymysql.install_as_MySQLdb()


class OracleBridgePoolHooks(BridgePoolHooks):
    """Pool hooks of the Oracle-mode bridges (Oracle needs FROM DUAL)."""

    @staticmethod
    def pool_ping(dbapi_connection: Any) -> bool:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM DUAL")
            cursor.fetchall()
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()
        return True


class OracleBridgeMixin(BridgeWrapperMixin):
    """Overrides for Django's oracle DatabaseWrapper over a bridge (Oracle, OceanBase Oracle mode).

    Not available over a bridge: ``RETURNING ... INTO`` output variables
    (``use_returning_into`` is forced off: ids are read back with a query),
    ``cursor.var()``, the driver's statement cache, and the LIKEC fallback
    for very old servers.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.features.can_return_columns_from_insert = False

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        for key in ("threaded", "use_returning_into", "service_name", "pool"):
            params["options"].pop(key, None)
        return params

    def init_connection_state(self) -> None:
        # Django's Oracle set-up, minus what only the native driver has.
        from django.conf import settings
        from django.db.backends.base.base import BaseDatabaseWrapper

        BaseDatabaseWrapper.init_connection_state(self)  # type: ignore[arg-type]
        with self.connection.cursor() as cursor:
            cursor.execute("ALTER SESSION SET NLS_TERRITORY = 'AMERICA'")
            cursor.execute(
                "ALTER SESSION SET NLS_DATE_FORMAT = 'YYYY-MM-DD HH24:MI:SS'"
                " NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF'"
                + (" TIME_ZONE = 'UTC'" if settings.USE_TZ else "")
            )
        self.operators = self._standard_operators  # type: ignore[attr-defined]
        self.pattern_ops = self._standard_pattern_ops  # type: ignore[attr-defined]
        if not self.get_autocommit():  # type: ignore[attr-defined]
            self.connection.commit()

    def is_usable(self) -> bool:
        if self.connection is None:
            return False
        try:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM DUAL")
                cursor.fetchall()
        except Exception:
            return False
        return True

    @property
    def oracle_version(self) -> tuple[int, ...]:
        if self.__dict__.get("_bridge_oracle_version") is None:
            import re

            with self.temporary_connection() as cursor:  # type: ignore[attr-defined]
                cursor.execute("SELECT version FROM product_component_version WHERE ROWNUM = 1")
                text = str(cursor.fetchone()[0])
            self.__dict__["_bridge_oracle_version"] = tuple(int(x) for x in re.findall(r"\d+", text)[:5])
        return tuple(self.__dict__["_bridge_oracle_version"])
