"""The DB-API layer of a bridge: exceptions, the driver protocol, cursor and connection.

:class:`BridgeConnection` / :class:`BridgeCursor` wrap the driver's DB-API
objects: Django's ``%s`` / ``%(name)s`` become ``?`` (sqlparams), results
come back as plain Python types, driver errors become this module's DB-API
exceptions chosen by SQLSTATE (so Django re-raises them as the right
``django.db.utils`` class), and ``commit``/``rollback`` in autocommit mode
are no-ops instead of errors. A *driver* object (see :class:`BridgeDriver`)
supplies the few driver-specific facts. Nothing here imports a driver.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..cursor import convert

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

    closed = False

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
        self.closed = True
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
