"""JPype's dbapi2 under pool_core.bridge: connecting, errors, Python types."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from pool_core.bridge.dbapi import BridgeDriver, make_error
from pool_core.bridge.wrapper import BridgeWrapperMixin
from pool_core.hooks import mask_credentials

from . import _jvm

__all__ = ["JDBCDriver", "JDBCWrapperMixin", "JDBC_OPTION_KEYS"]

#: OPTIONS keys read by pool_jdbc itself; every other key is a driver property.
JDBC_OPTION_KEYS = ("CLASSPATH", "JDBC_DRIVER", "JDBC_URL")

# URL prefix for a driver class when JDBC_DRIVER is set without JDBC_URL.
_SCHEMES = {
    "org.postgresql.Driver": "jdbc:postgresql://",
    "org.mariadb.jdbc.Driver": "jdbc:mariadb://",
    "com.mysql.cj.jdbc.Driver": "jdbc:mysql://",
    "com.mysql.jdbc.Driver": "jdbc:mysql://",
    "com.oceanbase.jdbc.Driver": "jdbc:oceanbase://",
    "com.alipay.oceanbase.jdbc.Driver": "jdbc:oceanbase://",
}

_PLAIN = (str, bool, type(None), bytes, decimal.Decimal, datetime.datetime, datetime.date,
          datetime.time)


class JDBCDriver(BridgeDriver):
    """Facts about JPype's dbapi2 connections."""

    def __init__(self, alias: str = "?") -> None:
        self.alias = alias
        self._errors: tuple[type[BaseException], ...] | None = None

    @property  # type: ignore[override]
    def errors(self) -> tuple[type[BaseException], ...]:
        if self._errors is None:
            import jpype
            import jpype.dbapi2

            self._errors = (jpype.dbapi2.Error, jpype.JException)
        return self._errors

    def _sql_exception(self, exc: BaseException) -> Any:
        e: Any = exc
        while e is not None:
            if hasattr(e, "getSQLState"):
                return e
            e = e.__cause__
        return None

    def sqlstate(self, exc: BaseException) -> str | None:
        e = self._sql_exception(exc)
        if e is None:
            return None
        state = e.getSQLState()
        return None if state is None else str(state)

    def native_code(self, exc: BaseException) -> int | None:
        e = self._sql_exception(exc)
        return None if e is None else int(e.getErrorCode())

    def message(self, exc: BaseException) -> str:
        e = self._sql_exception(exc) or exc
        get = getattr(e, "getMessage", None)
        if callable(get):
            text = get()
            if text is not None:
                return str(text)
        return str(exc)

    def translate(self, exc: BaseException) -> Any:
        state = self.sqlstate(exc)
        err = make_error(self.message(exc), state)
        if state is None and self._is_closed_error(exc):
            err = make_error(self.message(exc), "08003")
        return err

    @staticmethod
    def _is_closed_error(exc: BaseException) -> bool:
        text = str(exc).lower()
        return "closed" in text or "connection" in text and "lost" in text

    def check_usable(self, raw: Any) -> None:
        if _jvm.forked():
            raise make_error(
                _jvm.FORK_MESSAGE.format(alias=self.alias, parent=_jvm._state["pid"]), "08003"
            )

    def get_autocommit(self, raw: Any) -> bool:
        return bool(raw.connection.getAutoCommit())

    def set_autocommit(self, raw: Any, value: bool) -> None:
        raw.connection.setAutoCommit(value)

    def is_closed(self, raw: Any) -> bool:
        if _jvm.forked():
            return True
        return bool(raw.connection.isClosed())

    def adapt_param(self, value: Any) -> Any:
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            # The JVM runs in UTC (see _jvm): bind aware values as UTC.
            return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, decimal.Decimal):
            import jpype

            return jpype.JClass("java.math.BigDecimal")(str(value))
        if isinstance(value, memoryview):
            return bytes(value)
        return value

    def convert_value(self, value: Any) -> Any:
        if isinstance(value, _PLAIN):
            if type(value) is not str and isinstance(value, str):
                return str(value)
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        return _convert_java(value, self)

    def column_converter(self, type_code: Any) -> Any:
        if str(type_code).lower() in ("timestamptz", "timestamp with time zone"):
            return _aware_utc
        return None


def _aware_utc(value: Any) -> Any:
    from django.conf import settings

    if isinstance(value, datetime.datetime) and value.tzinfo is None and settings.USE_TZ:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value


def _convert_java(value: Any, driver: JDBCDriver) -> Any:
    import jpype

    if isinstance(value, jpype.JString):
        return str(value)
    name = str(value.getClass().getName())
    if name == "java.util.UUID":
        return uuid.UUID(str(value.toString()))
    if isinstance(value, jpype.JClass("java.sql.Clob")):
        return str(value.getSubString(1, int(value.length())))
    if isinstance(value, jpype.JClass("java.sql.Blob")):
        return bytes(value.getBytes(1, int(value.length())))
    if isinstance(value, jpype.JClass("java.sql.Array")):
        return [driver.convert_value(v) for v in value.getArray()]
    if isinstance(value, jpype.JClass("java.lang.Boolean")):
        return bool(value.booleanValue())
    if isinstance(value, jpype.JClass("java.lang.Number")):
        text = str(value.toString())
        return decimal.Decimal(text) if "." in text or "E" in text else int(text)
    get_value = getattr(value, "getValue", None)  # org.postgresql.util.PGobject
    if name.startswith("org.postgresql.util.PG") and callable(get_value):
        inner = get_value()
        return None if inner is None else str(inner)
    if name == "java.time.OffsetDateTime":
        return datetime.datetime.fromisoformat(str(value.toString()).replace("Z", "+00:00"))
    return str(value.toString())


class JDBCWrapperMixin(BridgeWrapperMixin):
    """Connection creation over JDBC; vendor base modules set the defaults."""

    bridge_option_keys = JDBC_OPTION_KEYS
    #: Default driver class and URL prefix of the vendor.
    jdbc_driver = ""
    jdbc_url_prefix = ""
    #: Driver properties set unless OPTIONS gives them.
    jdbc_default_properties: dict[str, str] = {}
    #: The driver's connect-timeout property and its unit per second (CONNECT_TIMEOUT).
    jdbc_connect_timeout = ("connectTimeout", 1000)

    @property
    def bridge_driver(self) -> JDBCDriver:  # type: ignore[override]
        driver = self.__dict__.get("_jdbc_driver")
        if driver is None:
            driver = self.__dict__["_jdbc_driver"] = JDBCDriver(self.alias)  # type: ignore[attr-defined]
        return driver

    def jdbc_url(self, conn_params: dict[str, Any], driver_class: str) -> str:
        options = self.settings_dict.get("OPTIONS") or {}  # type: ignore[attr-defined]
        if options.get("JDBC_URL"):
            return str(options["JDBC_URL"])
        prefix = self.jdbc_url_prefix
        if options.get("JDBC_DRIVER"):
            prefix = _SCHEMES.get(driver_class, prefix)
        host = conn_params["host"] or "127.0.0.1"
        port = f":{conn_params['port']}" if conn_params["port"] else ""
        return f"{prefix}{host}{port}/{conn_params['database']}"

    def jdbc_properties(self, conn_params: dict[str, Any]) -> dict[str, str]:
        props = dict(self.jdbc_default_properties)
        props.update({str(k): str(v) for k, v in conn_params["options"].items() if v is not None})
        if conn_params.get("connect_timeout") is not None:
            key, unit = self.jdbc_connect_timeout
            props.setdefault(key, str(int(conn_params["connect_timeout"]) * unit))
        if conn_params["user"]:
            props["user"] = str(conn_params["user"])
        if conn_params["password"]:
            props["password"] = str(conn_params["password"])
        return props

    def bridge_connect(self, conn_params: dict[str, Any]) -> Any:
        alias = self.alias  # type: ignore[attr-defined]
        options = self.settings_dict.get("OPTIONS") or {}  # type: ignore[attr-defined]
        jars = _jvm.classpath(options.get("CLASSPATH"), alias)
        jpype = _jvm.ensure_started(alias, jars)
        import jpype.dbapi2 as dbapi2

        driver_class = str(options.get("JDBC_DRIVER") or self.jdbc_driver)
        try:
            driver = jpype.JClass("java.lang.Class").forName(
                driver_class, True, jpype.JClass("org.jpype.JPypeContext").getInstance().getClassLoader()
            ).getDeclaredConstructor().newInstance()
        except jpype.JException as e:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}]: JDBC driver class {driver_class!r} not found "
                f"({type(e).__name__}); put its jar in OPTIONS['CLASSPATH'] (or $CLASSPATH), "
                "or name another class in OPTIONS['JDBC_DRIVER']."
            ) from None
        url = self.jdbc_url(conn_params, driver_class)
        info = jpype.JClass("java.util.Properties")()
        for key, value in self.jdbc_properties(conn_params).items():
            info.setProperty(key, value)
        jdriver = self.bridge_driver
        try:
            jconn = driver.connect(url, info)
        except jdriver.errors as e:
            err = jdriver.translate(e)
            if err.sqlstate is None:
                err = make_error(jdriver.message(e), "08001")
            raise err from None
        if jconn is None:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}]: JDBC driver {driver_class!r} does not accept the URL "
                f"{mask_credentials(url, conn_params.get('password'))!r}; "
                "set OPTIONS['JDBC_URL'] or OPTIONS['JDBC_DRIVER']."
            )
        return _connection_class()(jconn, dbapi2._default, dbapi2._default, dbapi2.SETTERS_BY_TYPE,
                                   dbapi2.GETTERS_BY_TYPE)


_classes: dict[str, Any] = {}


def _connection_class() -> Any:
    """jpype.dbapi2's Connection, whose cursors bind parameters by Python type only.

    jpype.dbapi2 asks the driver for parameter metadata before binding; on
    pgJDBC that is an extra round trip per statement, and it fails for
    untyped expressions such as ``SELECT ? + ?``.
    """
    if "connection" not in _classes:
        import jpype.dbapi2 as dbapi2

        class Cursor(dbapi2.Cursor):  # type: ignore[misc]
            def _setParams(self, params: Any) -> None:
                cx = self._connection
                for i, p in enumerate(params):
                    adapter = cx._adapters.get(type(p))
                    if adapter is not None:
                        p = adapter(p)
                    setter = cx._setters(cx, None, i, type(p)) or dbapi2.OBJECT
                    setter.set(self._statement, i + 1, p)

        class Connection(dbapi2.Connection):  # type: ignore[misc]
            def cursor(self) -> Any:
                self._validate()
                return Cursor(self)

        _classes["connection"] = Connection
    return _classes["connection"]

