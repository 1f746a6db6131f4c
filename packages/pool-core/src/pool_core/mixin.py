"""The DatabaseWrapper mixin that puts a pool under any Django backend.

Put it first in the bases: ``class DatabaseWrapper(PoolingMixin, base.DatabaseWrapper)``.
Vendors override the ``pool_*`` static hooks; everything else is shared.
"""

from __future__ import annotations

import os
import time
import weakref
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.signals import connection_created
from django.utils.asyncio import async_unsafe

from . import registry
from .deadline import DeadlineCursorDebugWrapper, DeadlineCursorWrapper, run_with_deadline
from .options import parse_options
from .pool import UNKNOWN, AliasPool

NO_DB_ALIAS = "__no_db__"
_INIT_DONE = "django_init"


def _copy_containers(value: Any) -> Any:
    """Copy dicts, lists and tuples all the way down; share everything else."""
    if isinstance(value, dict):
        return {k: _copy_containers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_containers(v) for v in value)
    return value


class PoolingMixin:
    """Checks connections out of the alias's pool instead of opening them.

    Django's ``close()`` (end of request, ``close_old_connections``) returns
    the connection to the pool; it is rolled back there if a transaction is
    open and discarded if broken. Django's per-connection set-up
    (``init_connection_state``) runs once per physical connection.
    """

    #: Name used in logs and stats.
    pool_vendor_name = "database"
    #: Skip init_connection_state on reused connections (False where the
    #: wrapper keeps per-instance state computed there, e.g. Oracle).
    pool_init_once = True

    _pool_fairy: Any = None
    _pool_current: AliasPool | None = None
    _pool_key_cache: tuple[Any, Any] | None = None
    #: (pool, settings_dict copy, USE_TZ, pool_key_extra()) of the last full connect().
    _pool_reconnect_state: tuple[AliasPool, dict[str, Any], bool, tuple[Any, ...]] | None = None
    #: True while Django's connect() runs: only then may init_connection_state be skipped.
    _pool_connecting = False
    #: Set while Django's health-check methods run: why a close() happens.
    _pool_closing_for: str | None = None
    #: The checkout record while QUERY_TIMEOUT applies to this checkout (pool_core.deadline).
    _pool_held: Any = None

    # -- vendor hooks -------------------------------------------------------

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> int:
        """IDLE, IN_TRANSACTION, BROKEN or UNKNOWN (unknown means: roll back)."""
        return UNKNOWN

    @staticmethod
    def pool_ping(dbapi_connection: Any) -> bool:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
            cursor.fetchall()
        finally:
            cursor.close()
        return True

    @staticmethod
    def pool_fileno(dbapi_connection: Any) -> int | None:
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

    @staticmethod
    def pool_driver_autocommit(dbapi_connection: Any) -> bool | None:
        """The driver's autocommit flag read locally, None if unknown (no short reconnect)."""
        return None

    def pool_key_extra(self) -> tuple[Any, ...]:
        """Settings besides conn_params that a pooled connection depends on."""
        return (getattr(self, "timezone_name", None),)

    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        """Set per-wrapper state for a connection another wrapper opened."""

    def pool_description(self, conn_params: dict[str, Any]) -> str:
        s = self.settings_dict  # type: ignore[attr-defined]
        where = s.get("HOST") or "local"
        if s.get("PORT"):
            where = f"{where}:{s['PORT']}"
        user = f"{s['USER']}@" if s.get("USER") else ""
        return f"{self.pool_vendor_name} {user}{where}/{s.get('NAME') or ''}"

    # -- Django hooks --------------------------------------------------------

    def check_settings(self) -> None:
        super().check_settings()  # type: ignore[misc]
        s = self.settings_dict  # type: ignore[attr-defined]
        if s.get("OPTIONS", {}).get("pool"):
            raise ImproperlyConfigured(
                f"DATABASES[{self.alias!r}]: OPTIONS['pool'] enables Django's own "  # type: ignore[attr-defined]
                "psycopg pool, which cannot be combined with this ENGINE; "
                "configure POOL_OPTIONS instead."
            )

    @property
    def pool_options(self) -> Any:
        return parse_options(self.alias, self.settings_dict.get("POOL_OPTIONS"))  # type: ignore[attr-defined]

    def _pool_connect_physical(self, conn_params: dict[str, Any]) -> Any:
        return super().get_new_connection(conn_params)  # type: ignore[misc]

    def connect(self) -> None:
        if self._pool_reconnect():
            return
        self._pool_connecting = True
        try:
            super().connect()  # type: ignore[misc]
        finally:
            self._pool_connecting = False
        pool = self._pool_current
        if pool is not None:
            # What the next connect() must find unchanged to take the short way.
            self._pool_reconnect_state = (
                pool,
                _copy_containers(self.settings_dict),  # type: ignore[attr-defined]
                django_settings.USE_TZ,
                self.pool_key_extra(),
            )

    def _pool_reconnect(self) -> bool:
        """Django's connect() for a parked connection, without the work it proves unnecessary.

        Runs only when everything the pool key depends on (settings_dict,
        USE_TZ, pool_key_extra()) equals what the previous full connect() of
        this wrapper saw, the pool is still the alias's live pool, a parked
        connection is ready to be handed out as is (see AliasPool._unpark),
        and the driver already runs in autocommit as Django wants. Then
        check_settings(), get_connection_params(), the pool key, set_autocommit()
        and init_connection_state() would change nothing: only the state
        Django's connect() resets is reset, and connection_created is sent.
        Everything else takes the full connect().
        """
        state = self._pool_reconnect_state
        if (
            state is None
            or not self.pool_init_once
            or type(self).pool_driver_autocommit is PoolingMixin.pool_driver_autocommit
        ):
            return False  # the driver's autocommit cannot be read locally: full connect()
        pool, seen, use_tz, extra = state
        s = self.settings_dict  # type: ignore[attr-defined]
        if (
            pool.retired
            or registry._pools.get(self.alias) is not pool  # type: ignore[attr-defined]
            or pool.pid != os.getpid()
            or not s["AUTOCOMMIT"]
            or s != seen
            or django_settings.USE_TZ != use_tz
            or self.pool_key_extra() != extra
        ):
            self._pool_reconnect_state = None
            return False
        fairy = pool.checkout_parked()
        if fairy is None:
            return False
        dbapi_connection = fairy.dbapi_connection
        if not fairy.info.get(_INIT_DONE) or self.pool_driver_autocommit(dbapi_connection) is not True:
            pool._unpark_to_queue(fairy)  # the full connect() gets it from the queue
            return False
        pool.count_parked_checkout()
        # The state Django's connect() resets, in its order.
        self.in_atomic_block = False
        self.savepoint_ids: list[str] = []
        self.atomic_blocks: list[Any] = []
        self.needs_rollback = False
        self.health_check_enabled = s["CONN_HEALTH_CHECKS"]
        max_age = s["CONN_MAX_AGE"]
        self.close_at = None if max_age is None else time.monotonic() + max_age
        self.closed_in_transaction = False
        self.errors_occurred = False
        self.health_check_done = True
        self._pool_fairy = fairy
        self._pool_current = pool
        self._pool_held = None if pool.options.query_timeout is None else pool.held(fairy)
        self.connection = dbapi_connection
        self.pool_adopt_connection(dbapi_connection)
        self.autocommit = True
        connection_created.send(sender=self.__class__, connection=self)
        self.run_on_commit: list[Any] = []
        return True

    def is_usable(self) -> bool:
        # After close() the connection belongs to the pool and this wrapper
        # holds None, also inside an atomic block (as with Django's own psycopg
        # pool). PostgreSQL's is_usable() expects that; MySQL's would raise
        # AttributeError.
        if self.connection is None:  # type: ignore[has-type]
            return False
        return bool(super().is_usable())  # type: ignore[misc]

    def close_if_health_check_failed(self) -> None:
        # Django closes here only when is_usable() said no: that physical
        # connection must be discarded, not handed to the next checkout.
        if self.connection is None or not self.health_check_enabled or self.health_check_done:  # type: ignore[has-type,attr-defined]
            return  # Django's own early exit, without the bookkeeping (hot path)
        self._pool_closing_for = "health_check"  # a plain try/finally: this runs on every request
        try:
            super().close_if_health_check_failed()  # type: ignore[misc]
        finally:
            self._pool_closing_for = None

    def close_if_unusable_or_obsolete(self) -> None:
        # Django closes here when autocommit was left changed, when the
        # connection outlived CONN_MAX_AGE, or when errors occurred and
        # is_usable() said no. errors_occurred is still True at _close() only
        # in the last case (or when autocommit was left changed after an error).
        if self.connection is None:  # type: ignore[has-type]
            return  # returned already (every request start, under a pool)
        self._pool_closing_for = "obsolete"  # a plain try/finally: this runs on every request
        try:
            super().close_if_unusable_or_obsolete()  # type: ignore[misc]
        finally:
            self._pool_closing_for = None

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if self.alias == NO_DB_ALIAS:  # type: ignore[attr-defined]
            # CREATE/DROP DATABASE (test runner) must not find our idle
            # sessions on the database it creates, clones or drops.
            registry.close_idle()
            return super().get_new_connection(conn_params)  # type: ignore[misc]
        key = self._pool_key(conn_params)
        pool = registry.get_existing(self.alias)  # type: ignore[attr-defined]
        if pool is None or pool.key != key:
            # A weak reference: the pool outlives this wrapper (and its thread),
            # and must not keep it, or its checkout, alive.
            template = weakref.ref(self)
            connect_timeout = self.pool_options.connect_timeout
            connect_params = conn_params
            if connect_timeout is not None:
                connect_params = self.pool_connect_timeout_params(dict(conn_params), connect_timeout)

            def connect() -> Any:
                wrapper = registry.current_wrapper() or template()
                if wrapper is None:  # pragma: no cover  (connects happen inside checkout())
                    raise RuntimeError("no DatabaseWrapper to open a connection with")
                return wrapper._pool_connect_physical(connect_params)

            pool = registry.get_pool(self, key, connect, self.pool_description(conn_params))
        registry._tls.wrapper = self
        try:
            fairy = pool.checkout()
        except self.Database.Error as e:  # type: ignore[attr-defined]
            raise self._pool_connect_error(e, pool) from e
        finally:
            registry._tls.wrapper = None
        self._pool_fairy = fairy
        self._pool_current = pool
        self._pool_held = None if pool.options.query_timeout is None else pool.held(fairy)
        dbapi_connection = fairy.dbapi_connection
        self.pool_adopt_connection(dbapi_connection)
        return dbapi_connection

    def _pool_connect_error(self, error: Exception, pool: AliasPool) -> Exception:
        """The driver's connect error as Django's, naming the alias, without the password."""
        from django.db import utils

        message = str(error).strip()
        password = self.settings_dict.get("PASSWORD")  # type: ignore[attr-defined]
        if password and isinstance(password, str):
            message = message.replace(password, "********")
        django_class = getattr(utils, type(error).__name__, None)
        if not (isinstance(django_class, type) and issubclass(django_class, utils.DatabaseError)):
            django_class = utils.OperationalError
        return django_class(  # type: ignore[no-any-return]
            f"DATABASES[{self.alias!r}]: cannot open a connection to {pool.description} "  # type: ignore[attr-defined]
            f"(check HOST, PORT, NAME, USER, PASSWORD and OPTIONS): {message}"
        )

    def _pool_key(self, conn_params: dict[str, Any]) -> Any:
        """The pool key for *conn_params*, frozen once per distinct value.

        Freezing walks every nested value (MySQL's converter table has
        dozens), so the last result is kept and reused while the inputs
        compare equal: a C-level dict comparison instead of a rebuild.
        """
        parts = (conn_params, self.pool_key_extra(), self.settings_dict.get("POOL_OPTIONS"))  # type: ignore[attr-defined]
        cached = self._pool_key_cache
        if cached is not None and cached[0] == parts:
            return cached[1]
        key = registry.pool_key(*parts)
        self._pool_key_cache = (_copy_containers(parts), key)
        return key

    def init_connection_state(self) -> None:
        fairy = self._pool_fairy
        if fairy is None or not self.pool_init_once:
            super().init_connection_state()  # type: ignore[misc]
            return
        info = fairy.info
        if self._pool_connecting and info.get(_INIT_DONE):
            # Only Django's connect() may skip it; an explicit call (to apply
            # session settings again) runs as it would unpooled.
            return
        super().init_connection_state()  # type: ignore[misc]
        info[_INIT_DONE] = True

    # -- QUERY_TIMEOUT: only checkouts of a pool that sets it take these paths --

    def make_cursor(self, cursor: Any) -> Any:
        if self._pool_held is None:
            return super().make_cursor(cursor)  # type: ignore[misc]
        return DeadlineCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor: Any) -> Any:
        if self._pool_held is None:
            return super().make_debug_cursor(cursor)  # type: ignore[misc]
        return DeadlineCursorDebugWrapper(cursor, self)

    def _commit(self) -> None:
        held = self._pool_held
        if held is None:
            return super()._commit()  # type: ignore[misc,no-any-return]
        return run_with_deadline(self, held, super()._commit)  # type: ignore[misc,no-any-return]

    def _rollback(self) -> None:
        held = self._pool_held
        if held is None:
            return super()._rollback()  # type: ignore[misc,no-any-return]
        return run_with_deadline(self, held, super()._rollback)  # type: ignore[misc,no-any-return]

    def _close(self) -> None:
        fairy = self._pool_fairy
        if fairy is None:
            super()._close()  # type: ignore[misc]
            return
        pool = self._pool_current
        dbapi_connection = self.connection  # type: ignore[has-type]
        self._pool_fairy = None
        self._pool_current = None
        self._pool_held = None
        # The connection belongs to the pool again: this wrapper must not
        # touch it, even if Django keeps the wrapper inside an atomic block.
        self.connection = None
        assert pool is not None
        errors_occurred = bool(self.errors_occurred)  # type: ignore[attr-defined]
        reason = self._pool_closing_for
        if reason == "health_check" or (reason == "obsolete" and errors_occurred):
            # Django found this connection unusable: never hand it out again.
            pool.discard(fairy)
            return
        pool.give_back(fairy, dbapi_connection, errors_occurred)

    def _pool_detach_after_fork(self) -> None:
        """In a forked child: drop the inherited checkout without using it."""
        fairy = self._pool_fairy
        if fairy is None:
            return
        from . import _fork

        fairy.info["foreign"] = True
        _fork.neutralize(fairy.dbapi_connection, type(self).pool_fileno)
        self._pool_fairy = None
        self._pool_current = None
        self._pool_held = None
        self.connection = None
        self.in_atomic_block = False
        self.savepoint_ids = []
        self.atomic_blocks = []
        self.needs_rollback = False
        self.closed_in_transaction = False


__all__ = ["PoolingMixin"]
