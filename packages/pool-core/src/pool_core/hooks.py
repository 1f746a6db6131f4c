"""The vendor contract: what pool_core needs to know about a driver and its server.

:class:`PoolHooks` is the whole contract, typed: every hook the pool and the
pooling mixin call, with the default each falls back to, and the Django
wrapper attributes the hooks may read. :class:`TransactionState` is what
``pool_transaction_state`` reports.

The server-dialect classes below hold the hooks that depend on the server's
SQL dialect (and on Django's backend for it) only, not on the driver; vendor
packages combine them with their driver-level hooks in one class line, as
SQLAlchemy joins a dialect and a connector::

    class PostgresHooks(PostgresServerHooks): ...                  # pool_postgresql: psycopg
    class PostgresPoolingMixin(PostgresHooks, PostgresSessionMixin, PoolingMixin): ...
    class PostgresBridgePoolHooks(PostgresServerHooks, PostgresSessionMixin, BridgePoolHooks): ...

Vendor packages import from ``pool_core``, ``pool_core.hooks``,
``pool_core.mixin`` and ``pool_core.bridge`` only (tests/test_architecture.py).
Nothing here imports a driver; Django's backend modules (which do) are
imported inside the hooks that need them.
"""

from __future__ import annotations

import enum
import logging
import math
from typing import TYPE_CHECKING, Any

from ._masking import mask_credentials

__all__ = [
    "ClosedCursor",
    "MySQLServerHooks",
    "OracleServerHooks",
    "PoolHooks",
    "PostgresServerHooks",
    "PostgresSessionMixin",
    "TransactionState",
    "install_mysqldb_if_needed",
    "mask_credentials",
]

logger = logging.getLogger("pool_core")

#: django.db.backends.postgresql.psycopg_any.IsolationLevel, once imported (it imports the driver).
_IsolationLevel: Any = None

if TYPE_CHECKING:
    # For the type checker, the hooks are what they become: part of a Django
    # DatabaseWrapper, whose attributes (alias, settings_dict, ...) they read.
    from django.db.backends.base.base import BaseDatabaseWrapper as _DjangoWrapper
else:
    _DjangoWrapper = object


class TransactionState(enum.IntEnum):
    """A connection's transaction state, read locally from the driver (no round trip)."""

    #: Outside a transaction: can go back to the pool as is.
    IDLE = 0
    #: Inside a transaction (or a failed one): rolled back on return.
    IN_TRANSACTION = 1
    #: Closed or broken: discarded on return.
    BROKEN = 2
    #: The driver cannot tell: rolled back on return, to be safe.
    UNKNOWN = 3


class ClosedCursor:
    """Stands in for the driver cursor of an iterator whose connection went back to the pool.

    Every read raises *error* (the driver's own "connection is closed"
    error, which Django turns into its own class as for an unpooled closed
    connection); close() does nothing. It holds no reference to the
    connection, so an old generator can never reach a session another
    request now uses.
    """

    closed = True

    def __init__(self, error: Exception) -> None:
        self._error = error

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise type(self._error)(*self._error.args)

    fetchone = fetchmany = fetchall = execute = executemany = nextset = scroll = _fail

    def __iter__(self) -> Any:
        self._fail()

    def close(self) -> None:
        pass


class PoolHooks(_DjangoWrapper):
    """The vendor contract, with its defaults (a generic DB-API driver).

    A vendor's DatabaseWrapper has this class among its bases (through
    :class:`~pool_core.mixin.PoolingMixin`, after the vendor's hooks and
    before Django's wrapper); the pool is handed that class and calls the
    static hooks on it. Hooks taking ``self`` run on the wrapper instance and
    may read the Django wrapper attributes annotated here.

    Driver-level hooks read local state and never make a round trip unless
    their docstring says so: they run on every checkout and return.
    """

    if TYPE_CHECKING:
        Database: Any  # the driver module, on every Django wrapper

    #: Name used in logs and stats.
    pool_vendor_name = "database"
    #: CHECKOUT="transaction" is implemented for this backend (native drivers).
    pool_supports_transaction_checkout = False

    # -- driver hooks (static: the pool calls them on the class) ----------------

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> TransactionState:
        """IDLE, IN_TRANSACTION, BROKEN or UNKNOWN (unknown means: roll back)."""
        return TransactionState.UNKNOWN

    @staticmethod
    def pool_ping(dbapi_connection: Any) -> bool:
        """One round trip that proves the session answers; raise (or False) if not."""
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
            cursor.fetchall()
        finally:
            cursor.close()
        return True

    @staticmethod
    def pool_fileno(dbapi_connection: Any) -> int | None:
        """The connection's socket, for the idle poll and after fork(); None if unknown."""
        fileno = getattr(dbapi_connection, "fileno", None)
        return fileno() if callable(fileno) else None

    @staticmethod
    def pool_reset_session(dbapi_connection: Any) -> bool:
        """Reset all session state in place; return False to have the pool
        close the connection instead (the next checkout opens a fresh one)."""
        return False

    @staticmethod
    def pool_server_max_connections(cursor: Any) -> int | None:
        """Connections the server accepts for ordinary clients, or None if unknown."""
        return None

    @staticmethod
    def pool_connect_timeout_params(conn_params: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Return *conn_params* with the driver's connect timeout set (CONNECT_TIMEOUT).

        A timeout given in OPTIONS wins. The default knows no driver: no change.
        """
        return conn_params

    @classmethod
    def pool_connect_timeout_max(cls) -> int | None:
        """The largest CONNECT_TIMEOUT, in seconds, the driver accepts; None if unknown."""
        return None

    @staticmethod
    def pool_driver_autocommit(dbapi_connection: Any) -> bool | None:
        """The driver's autocommit flag read locally, None if unknown (no short reconnect)."""
        return None

    # -- wrapper hooks (run on the DatabaseWrapper instance) ---------------------

    @staticmethod
    def pool_cursor_closed(cursor: Any) -> bool:
        """True if the driver *cursor* is closed, so it can no longer reach its connection.

        A ``closed`` attribute (psycopg, the bridges) says so; else a cursor
        whose ``connection`` is None (MySQLdb, PyMySQL) or unreadable is
        closed. Unknown means open: pool_release_cursor() then cuts it off.
        """
        closed = getattr(cursor, "closed", None)
        if closed is not None:
            return bool(closed)
        try:
            return cursor.connection is None
        except AttributeError:
            return False
        except Exception:  # e.g. pyodbc: "Attempt to use a closed cursor"
            return True

    def pool_release_cursor(self, dbapi_connection: Any, cursor: Any) -> Any:
        """Cut an open driver *cursor* off the connection.

        Called on return for each cursor made during the checkout that is
        still referenced and open (an unfinished ``iterator()`` generator, a
        cursor kept past ``close()``). Returns
        what Django's cursor wrapper holds from then on. The default closes
        the cursor and puts a ClosedCursor in its place: the old generator
        fails as on a closed connection. Raise to have the connection discarded.
        """
        if not getattr(cursor, "closed", False):
            cursor.close()
        return ClosedCursor(self.Database.InterfaceError("the connection is closed"))

    def pool_key_extra(self) -> tuple[Any, ...]:
        """Settings besides conn_params that a pooled connection depends on."""
        return (getattr(self, "timezone_name", None),)

    def pool_session_signature(self) -> tuple[Any, ...]:
        """Settings init_connection_state() applies to a session and can apply again.

        Not part of the pool key: a pooled connection set up under another
        signature (e.g. a thread whose cached time zone differs) gets
        init_connection_state() again at checkout instead of a pool of its own.
        Whatever init_connection_state() cannot undo belongs in pool_key_extra().
        """
        return ()

    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        """Set per-wrapper state for a connection another wrapper opened."""


class PostgresServerHooks(PoolHooks):
    isolation_level: Any  # Django's postgresql wrapper attribute

    @staticmethod
    def pool_server_max_connections(cursor: Any) -> int | None:
        """Connections PostgreSQL accepts for ordinary (non-superuser) clients."""
        cursor.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - coalesce(current_setting('reserved_connections', true)::int, 0)"
        )
        return int(cursor.fetchone()[0])

    @staticmethod
    def pool_connect_timeout_params(conn_params: dict[str, Any], seconds: float) -> dict[str, Any]:
        # libpq (and pgJDBC/psqlODBC, which follow it): whole seconds, at least 2.
        conn_params.setdefault("connect_timeout", max(2, math.ceil(seconds)))
        return conn_params

    @staticmethod
    def pool_reset_session(dbapi_connection: Any) -> bool:
        """DISCARD ALL, outside a transaction block; one round trip."""
        autocommit = dbapi_connection.autocommit
        if not autocommit:
            dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("DISCARD ALL")
        if not autocommit:
            dbapi_connection.autocommit = False
        logger.debug("reset a PostgreSQL session (DISCARD ALL)")
        return True

    def pool_key_extra(self) -> tuple[Any, ...]:
        # Django sets the isolation level when it connects, and never resets a role.
        options = self.settings_dict["OPTIONS"]
        return (options.get("assume_role"), options.get("isolation_level"))

    def pool_session_signature(self) -> tuple[Any, ...]:
        # The time zone: init_connection_state() applies it again (and
        # PostgresSessionMixin._configure_timezone() resets one it cannot set).
        return (self.timezone_name,)

    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        # Django's get_new_connection sets this on the wrapper; a reused
        # connection skips that, so set it the same way here.
        global _IsolationLevel
        IsolationLevel = _IsolationLevel
        if IsolationLevel is None:  # imported once, not per checkout (it imports the driver)
            from django.db.backends.postgresql.psycopg_any import IsolationLevel

            _IsolationLevel = IsolationLevel
        level = self.settings_dict["OPTIONS"].get("isolation_level")
        self.isolation_level = IsolationLevel.READ_COMMITTED if level is None else IsolationLevel(level)


class PostgresSessionMixin(_DjangoWrapper):
    """Django postgresql DatabaseWrapper overrides for a pooled session, whatever the driver.

    Put it before Django's DatabaseWrapper in the bases. ``_configure_timezone``
    handles the pooled case and leaves the rest to the next class: Django's
    (which reads the session's time zone from psycopg) or a bridge's.
    """

    if TYPE_CHECKING:  # PoolingMixin provides these

        def _pool_session_applied(self) -> None: ...
        def _pool_recorded_session(self) -> tuple[Any, ...] | None: ...

    def ensure_timezone(self) -> bool:
        # Django closes its own pool here; ours re-runs the set-up of a
        # connection whose session time zone differs from the checkout's.
        if self.connection is None:
            return False
        changed = self._configure_timezone(self.connection)
        self._pool_session_applied()
        return changed

    def _configure_timezone(self, connection: Any) -> bool:
        if not self.timezone_name:
            recorded = self._pool_recorded_session()
            if recorded and recorded[0]:
                # Django sets no time zone then (the server's applies); a pooled
                # session may carry one set under other settings.
                with connection.cursor() as cursor:
                    cursor.execute("RESET TIME ZONE")
                return True
        return bool(super()._configure_timezone(connection))  # type: ignore[misc]


class MySQLServerHooks(PoolHooks):
    isolation_level: Any  # Django's mysql wrapper attribute

    @staticmethod
    def pool_server_max_connections(cursor: Any) -> int | None:
        cursor.execute("SELECT @@max_connections")
        return int(cursor.fetchone()[0])

    def pool_key_extra(self) -> tuple[Any, ...]:
        return (self.isolation_level,)


class OracleServerHooks:
    """Oracle's dialect where a bridge needs it (the native driver pings on its own).

    Put it on the DatabaseWrapper side (``OracleBridgeMixin``): the pool's
    hooks read it from the final class.
    """

    #: The liveness check of ``is_usable()`` and the pool's ping: Oracle's SELECT needs a table.
    ping_sql = "SELECT 1 FROM DUAL"


def install_mysqldb_if_needed(*, missing_ok: bool = True) -> None:
    """Django's mysql backend imports MySQLdb: use PyMySQL as MySQLdb if mysqlclient is absent.

    With neither installed, *missing_ok* (the bridges, where PyMySQL is an
    extra) returns and lets Django report the missing driver; otherwise
    (pool_mysql, which depends on PyMySQL) PyMySQL's ImportError is raised.
    """
    import importlib
    import importlib.util

    if importlib.util.find_spec("MySQLdb") is None:
        try:
            pymysql = importlib.import_module("pymysql")
        except ImportError:
            if missing_ok:
                return  # Django reports the missing driver
            raise
        pymysql.install_as_MySQLdb()
