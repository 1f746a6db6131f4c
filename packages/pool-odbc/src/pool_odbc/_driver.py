"""pyodbc under pool_core.bridge: connection strings, errors, Python types."""

from __future__ import annotations

import datetime
import re
import uuid
import weakref
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from pool_core.bridge import mask_password
from pool_core.bridge.dbapi import BridgeDriver, make_error
from pool_core.bridge.wrapper import BridgeWrapperMixin

__all__ = ["ODBCDriver", "ODBCWrapperMixin", "ODBC_OPTION_KEYS", "connection_string"]

#: OPTIONS keys read by pool_odbc itself; every other key goes into the connection string.
ODBC_OPTION_KEYS = ("DSN", "DRIVER", "CONNECTION_STRING", "TIMEOUT")
_NATIVE = re.compile(r"\((\d+)\)(?: \(SQL\w+\))?\s*$")


def _value(v: Any) -> str:
    text = str(v)
    if any(c in text for c in ";{}=") or text != text.strip():
        return "{" + text.replace("}", "}}") + "}"
    return text


def connection_string(parts: dict[str, Any]) -> str:
    return ";".join(f"{k}={_value(v)}" for k, v in parts.items() if v is not None and v != "")


def _import_pyodbc(alias: str) -> Any:
    try:
        import pyodbc
    except ImportError as e:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]: the ODBC backends need pyodbc and the system's "
            f"unixODBC (pip install pool-odbc; apt install unixodbc): {e}"
        ) from e
    return pyodbc


class ODBCDriver(BridgeDriver):
    """Facts about pyodbc connections."""

    def __init__(self, alias: str = "?", aware: Any = None) -> None:
        self.alias = alias
        self._aware = aware
        self._errors: tuple[type[BaseException], ...] | None = None

    @property  # type: ignore[override]
    def errors(self) -> tuple[type[BaseException], ...]:
        if self._errors is None:
            import pyodbc

            self._errors = (pyodbc.Error,)
        return self._errors

    def sqlstate(self, exc: BaseException) -> str | None:
        args = getattr(exc, "args", ())
        if args and isinstance(args[0], str) and len(args[0]) == 5:
            return args[0]
        return None

    def native_code(self, exc: BaseException) -> int | None:
        # MariaDB Connector/ODBC ends its messages with "... (1007) (SQLExecDirectW)".
        match = _NATIVE.search(self.message(exc))
        return int(match.group(1)) if match else None

    def message(self, exc: BaseException) -> str:
        args = getattr(exc, "args", ())
        if len(args) >= 2:
            return str(args[1])
        return str(exc)

    def translate(self, exc: BaseException) -> Any:
        import pyodbc

        state = self.sqlstate(exc)
        # pyodbc already classifies some errors (by SQLSTATE too); keep its
        # verdict where the SQLSTATE is generic.
        if state in (None, "HY000") and isinstance(exc, pyodbc.ProgrammingError):
            from pool_core.bridge.dbapi import ProgrammingError

            return make_error(self.message(exc), state, ProgrammingError)
        if state in (None, "HY000") and isinstance(exc, pyodbc.IntegrityError):
            from pool_core.bridge.dbapi import IntegrityError

            return make_error(self.message(exc), state, IntegrityError)
        return make_error(self.message(exc), state)

    def is_closed(self, raw: Any) -> bool:
        return bool(getattr(raw, "closed", False))

    def adapt_param(self, value: Any) -> Any:
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            # Sessions run in the connection's time zone (UTC under USE_TZ).
            tz = self._aware() if self._aware is not None else datetime.timezone.utc
            return value.astimezone(tz).replace(tzinfo=None)
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, memoryview):
            return bytes(value)
        return value

    def column_converter(self, type_code: Any) -> Any:
        if self._aware is not None and type_code is datetime.datetime:
            aware = self._aware

            def make_aware(value: Any) -> Any:
                tz = aware()
                if tz is not None and isinstance(value, datetime.datetime) and value.tzinfo is None:
                    return value.replace(tzinfo=tz)
                return value

            return make_aware
        return None


class ODBCWrapperMixin(BridgeWrapperMixin):
    """Connection creation over ODBC; vendor base modules set the defaults."""

    bridge_option_keys = ODBC_OPTION_KEYS
    #: Default ODBC driver name (as in odbcinst.ini) when neither DSN,
    #: DRIVER nor CONNECTION_STRING is given ("" = one is required).
    odbc_driver = ""
    #: Connection-string keys for host, port, database, user, password.
    odbc_keys = ("SERVER", "PORT", "DATABASE", "UID", "PWD")
    #: Timestamps come back naive in the session time zone: make them aware.
    odbc_aware_datetimes = False

    @property
    def bridge_driver(self) -> ODBCDriver:  # type: ignore[override]
        driver = self.__dict__.get("_odbc_driver")
        if driver is None:
            aware = None
            if self.odbc_aware_datetimes:
                # A weak reference: the driver lives as long as its pooled
                # connections, which must not keep this wrapper alive.
                wrapper = weakref.ref(self)

                def aware() -> Any:
                    from django.conf import settings

                    w = wrapper()
                    if w is None or not settings.USE_TZ:
                        return datetime.timezone.utc if settings.USE_TZ else None
                    return w.timezone  # type: ignore[attr-defined]

            driver = self.__dict__["_odbc_driver"] = ODBCDriver(self.alias, aware)  # type: ignore[attr-defined]
        return driver

    def odbc_connection_string(self, conn_params: dict[str, Any]) -> str:
        alias = self.alias  # type: ignore[attr-defined]
        options = self.settings_dict.get("OPTIONS") or {}  # type: ignore[attr-defined]
        server, port, database, uid, pwd = self.odbc_keys
        login = {uid: conn_params["user"], pwd: conn_params["password"]}
        if options.get("CONNECTION_STRING"):
            return str(options["CONNECTION_STRING"])
        extra = {str(k): v for k, v in conn_params["options"].items()}
        if options.get("DSN"):
            return connection_string({"DSN": options["DSN"], database: conn_params["database"], **login, **extra})
        driver = options.get("DRIVER") or self.odbc_driver
        if not driver:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}]: set OPTIONS['DRIVER'] (an ODBC driver name from "
                "odbcinst.ini), OPTIONS['DSN'] or OPTIONS['CONNECTION_STRING']."
            )
        parts = {"DRIVER": "{" + str(driver).strip("{}") + "}", server: conn_params["host"] or "127.0.0.1",
                 port: conn_params["port"], database: conn_params["database"], **login, **extra}
        return ";".join(f"{k}={v if k == 'DRIVER' else _value(v)}" for k, v in parts.items()
                        if v is not None and v != "")

    def odbc_configure(self, raw: Any) -> None:
        """Set encodings etc. on a new pyodbc connection."""

    def bridge_connect(self, conn_params: dict[str, Any]) -> Any:
        alias = self.alias  # type: ignore[attr-defined]
        pyodbc = _import_pyodbc(alias)
        options = self.settings_dict.get("OPTIONS") or {}  # type: ignore[attr-defined]
        text = self.odbc_connection_string(conn_params)
        # Login timeout: OPTIONS['TIMEOUT'], else POOL_OPTIONS['CONNECT_TIMEOUT'].
        timeout = int(options.get("TIMEOUT") or conn_params.get("connect_timeout") or 0)
        try:
            raw = pyodbc.connect(text, autocommit=False, timeout=timeout)
        except pyodbc.Error as e:
            state = self.bridge_driver.sqlstate(e)
            if state in ("IM002", "IM003", "IM001") or "Can't open lib" in str(e):
                key = "DSN" if options.get("DSN") else (
                    "CONNECTION_STRING" if options.get("CONNECTION_STRING") else "DRIVER")
                raise ImproperlyConfigured(
                    f"DATABASES[{alias!r}]: ODBC data source or driver from OPTIONS[{key!r}] "
                    f"not found or not loadable ({state}); installed drivers: {pyodbc.drivers()}."
                ) from None
            message = mask_password(self.bridge_driver.message(e), conn_params["password"])
            raise make_error(message, state if state and not state.startswith("HY") else "08001") from None
        self.odbc_configure(raw)
        return raw

