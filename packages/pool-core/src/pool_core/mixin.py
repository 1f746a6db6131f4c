"""The DatabaseWrapper mixin that puts a pool under any Django backend.

Put it first in the bases: ``class DatabaseWrapper(PoolingMixin, base.DatabaseWrapper)``.
Vendors override the ``pool_*`` static hooks; everything else is shared.
"""

from __future__ import annotations

import _thread
import logging
import os
import time
import weakref
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db.backends.signals import connection_created
from django.db.backends.utils import CursorWrapper
from django.utils.asyncio import async_unsafe

from . import registry
from ._masking import mask_credentials, mask_exception, mask_password, mask_pool_logs
from ._sqla import INIT_DONE as _INIT_DONE
from ._sqla import info_of
from .deadline import DeadlineCursorDebugWrapper, DeadlineCursorWrapper, run_with_deadline
from .hooks import ClosedCursor, PoolHooks
from .options import check_connect_timeout, parse_options
from .pool import AliasPool

NO_DB_ALIAS = "__no_db__"

logger = logging.getLogger("pool_core")


#: PoolingMixin._pool_reconnect_state.
_ReconnectState = tuple[AliasPool, dict[str, Any], int, tuple[Any, ...], bool]


def _copy_containers(value: Any) -> Any:
    """Copy dicts, lists and tuples all the way down; share everything else."""
    if isinstance(value, dict):
        return {k: _copy_containers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_containers(v) for v in value)
    return value


def _option_paths(value: Any, path: str) -> list[tuple[str, str, Any]]:
    """(path, key, value) of every entry of a nested OPTIONS dict, leaves last."""
    found: list[tuple[str, str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}[{k!r}]"
            found.append((sub, str(k), v))
            found += _option_paths(v, sub)
    return found


def _offending_setting(error: Exception, settings_dict: dict[str, Any]) -> str:
    """Name the setting a driver's non-DB-API connect error is most likely about.

    In order: the OPTIONS entry holding the file the error names (or, when
    it names none, an OPTIONS path that does not exist); the setting whose
    value could not be encoded; an OPTIONS key, or CONNECT_TIMEOUT, named in
    the message; the ssl/tls entries when the error comes from the ssl
    module; else all of OPTIONS. Only runs on the error path.
    """
    import traceback

    options = settings_dict.get("OPTIONS") or {}
    entries = _option_paths(options, "OPTIONS")
    leaves = [(p, k, v) for p, k, v in entries if not isinstance(v, dict)]
    if isinstance(error, OSError) and not isinstance(error, ConnectionError):
        filename = getattr(error, "filename", None)
        for p, _, v in leaves:
            if isinstance(v, (str, os.PathLike)) and (
                (filename is not None and os.fspath(v) == os.fspath(filename))
                or (filename is None and os.sep in os.fspath(v) and not os.path.exists(v))
            ):
                return p
    if isinstance(error, UnicodeError):
        bad = getattr(error, "object", None)
        if isinstance(bad, bytes):
            bad = bad.decode("utf-8", "replace")
        for key in ("PASSWORD", "USER", "NAME", "HOST"):
            if bad and settings_dict.get(key) == bad:
                return key
    text = str(error).lower()
    for path, name, _value in reversed(entries):
        if len(name) > 2 and name.lower() in text:
            return str(path)
    if "connect_timeout" in text:
        return "POOL_OPTIONS['CONNECT_TIMEOUT'] or OPTIONS"
    frames = traceback.extract_tb(error.__traceback__)
    import ssl

    if isinstance(error, ssl.SSLError) or any(os.path.basename(f.filename) == "ssl.py" for f in frames):
        tls = [p for p, k, _ in entries if "ssl" in k.lower() or "tls" in k.lower()]
        if tls:
            return tls[0]
    if options:
        named = ", ".join(f"OPTIONS[{k!r}]" for k in options)
        return named if len(options) == 1 else f"one of {named}"
    return "a setting (check HOST, PORT, NAME, USER, PASSWORD and OPTIONS)"


#: Bumped by every setting_changed signal (override_settings): a short
#: reconnect needs Django's settings (USE_TZ, TIME_ZONE...) as they were.
_settings_changes = 0


def _on_setting_changed(**kwargs: Any) -> None:
    global _settings_changes
    _settings_changes += 1


setting_changed.connect(_on_setting_changed, dispatch_uid="pool_core.mixin")


class PoolingMixin(PoolHooks):
    """Checks connections out of the alias's pool instead of opening them.

    Django's ``close()`` (end of request, ``close_old_connections``) returns
    the connection to the pool; it is rolled back there if a transaction is
    open and discarded if broken. Django's per-connection set-up
    (``init_connection_state``) runs once per physical connection.
    """

    #: Skip init_connection_state on reused connections (False where the
    #: wrapper keeps per-instance state computed there, e.g. Oracle).
    pool_init_once = True

    _pool_proxied: Any = None
    _pool_current: AliasPool | None = None
    _pool_key_cache: tuple[Any, Any] | None = None
    #: (pool, settings_dict copy, _settings_changes, pool_key_extra(), reclaimable) of
    #: the last full connect(); reclaimable: whether a connection this wrapper parks
    #: may be taken back by ensure_connection() (AUTOCOMMIT, no RESET_SESSION).
    _pool_reconnect_state: _ReconnectState | None = None
    #: (pool, connection) _pool_reconnect() checked out for the full connect() it falls back to.
    _pool_pending: tuple[AliasPool, Any] | None = None
    #: (pool, weak reference to the connection, lease) of the connection this
    #: wrapper parked last: its next checkout takes it back first if nobody had
    #: it since (AliasPool.reclaim; ensure_connection). Weak: another thread may
    #: take it and end without returning it; the garbage collector must then be
    #: free to give it back (dead-thread reclamation).
    _pool_soft: tuple[AliasPool, weakref.ref[Any], int] | None = None
    #: True while Django's connect() runs: only then may init_connection_state be skipped.
    _pool_connecting = False
    #: Set while Django's health-check methods run: why a close() happens.
    _pool_closing_for: str | None = None
    #: Weak references to the cursors made during this checkout; None when
    #: there were none, or when all were closed at the last look.
    _pool_cursors: list[weakref.ref[Any]] | None = None

    #: POOL_OPTIONS["CHECKOUT"] of this wrapper ("transaction": see _lease.py).
    pool_checkout = "request"
    #: Transaction mode (_lease.py): True while a connect() must keep its connection;
    #: True once the connection went back to the pool mid-request.
    _pool_lease_busy = False
    _pool_lease_released = False
    #: The checkout record while QUERY_TIMEOUT applies to this checkout (pool_core.deadline).
    _pool_held: Any = None

    #: Whether this class closes as Django's BaseDatabaseWrapper does, so that
    #: close_if_unusable_or_obsolete() may do it in one step (set per class below).
    _pool_plain_close = False
    # Django's BaseDatabaseWrapper sets these (not in django-stubs); close_if_unusable_or_obsolete() reads them.
    _thread_sharing_count: int
    _thread_ident: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from django.db.backends.base.base import BaseDatabaseWrapper as Base

        cls._pool_plain_close = (
            getattr(cls, "close", None) is Base.close
            and getattr(cls, "get_autocommit", None) is Base.get_autocommit
            and getattr(cls, "validate_thread_sharing", None) is Base.validate_thread_sharing
            and cls.close_if_unusable_or_obsolete is PoolingMixin.close_if_unusable_or_obsolete
            and cls._close is PoolingMixin._close
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.alias != NO_DB_ALIAS:
            self._pool_setup_checkout()

    def _pool_setup_checkout(self) -> None:
        """Hook for CHECKOUT="transaction": per-instance overrides from _lease.py."""
        try:
            checkout = self.pool_options.checkout
        except ImproperlyConfigured:
            return  # reported where the options are used (first connect, checks)
        if checkout != "transaction":
            return
        if not self.pool_supports_transaction_checkout:
            raise ImproperlyConfigured(
                f"DATABASES[{self.alias!r}]: POOL_OPTIONS['CHECKOUT'] = 'transaction' is not "
                f"supported by ENGINE {self.settings_dict['ENGINE']!r} yet; use 'request'."
            )
        from . import _lease

        _lease.install(self)

    def _pool_recorded_session(self) -> tuple[Any, ...] | None:
        """The signature the checked-out session was last set up under (None: never)."""
        proxied = self._pool_proxied
        return None if proxied is None else info_of(proxied).get(_INIT_DONE)

    def _pool_session_applied(self) -> None:
        """Record that the checked-out session now runs under this wrapper's settings.

        For code that applies session settings outside init_connection_state()
        (ensure_timezone() under override_settings): the connection goes back
        to the pool marked with what it really runs under.
        """
        proxied = self._pool_proxied
        if proxied is not None and info_of(proxied).get(_INIT_DONE) is not None:
            info_of(proxied)[_INIT_DONE] = self.pool_session_signature()

    def pool_description(self, conn_params: dict[str, Any]) -> str:
        s = self.settings_dict
        where = s.get("HOST") or "local"
        if s.get("PORT"):
            where = f"{where}:{s['PORT']}"
        user = f"{s['USER']}@" if s.get("USER") else ""
        return mask_credentials(
            f"{self.pool_vendor_name} {user}{where}/{s.get('NAME') or ''}", s.get("PASSWORD")
        )

    # -- Django hooks --------------------------------------------------------

    # Every cursor of the checkout is noted, weakly: one still open when the
    # connection goes back is cut off it (_pool_release_cursors).

    def make_cursor(self, cursor: Any) -> Any:
        # Django's own (BaseDatabaseWrapper.make_cursor; no backend overrides
        # it: tests/test_architecture.py), with the note inline: one call per
        # cursor, as without a pool.
        wrapped = CursorWrapper(cursor, self)
        cursors = self._pool_cursors
        if cursors is None:
            self._pool_cursors = [weakref.ref(wrapped)]
        elif len(cursors) < 64:
            cursors.append(weakref.ref(wrapped))
        else:
            self._pool_note_cursor(wrapped)
        return wrapped

    def make_debug_cursor(self, cursor: Any) -> Any:
        wrapped = super().make_debug_cursor(cursor)
        self._pool_note_cursor(wrapped)
        return wrapped

    def _pool_note_cursor(self, wrapped: Any) -> None:
        cursors = self._pool_cursors
        if cursors is None:
            self._pool_cursors = [weakref.ref(wrapped)]
            return
        if len(cursors) >= 64:  # a long checkout (a command's loop): forget collected ones
            cursors[:] = [r for r in cursors if r() is not None]
        cursors.append(weakref.ref(wrapped))

    def _pool_release_cursors(self, dbapi_connection: Any) -> None:
        """Cut every cursor of this checkout still open (an unfinished iterator(), a cursor
        kept past close()) off *dbapi_connection*: it fails as on a closed connection."""
        cursors = self._pool_cursors
        self._pool_cursors = None
        closed = self.pool_cursor_closed
        for ref in cursors or ():
            wrapper = ref()
            if wrapper is None:
                continue  # collected: its driver cursor went with it
            cursor = wrapper.cursor
            if isinstance(cursor, ClosedCursor) or closed(cursor):
                continue  # a closed cursor cannot reach the connection any more
            wrapper.cursor = self.pool_release_cursor(dbapi_connection, cursor)

    def check_settings(self) -> None:
        super().check_settings()
        s = self.settings_dict
        if s.get("OPTIONS", {}).get("pool"):
            raise ImproperlyConfigured(
                f"DATABASES[{self.alias!r}]: OPTIONS['pool'] enables Django's own "
                "psycopg pool, which cannot be combined with this ENGINE; "
                "configure POOL_OPTIONS instead."
            )

    @property
    def pool_options(self) -> Any:
        return parse_options(self.alias, self.settings_dict.get("POOL_OPTIONS"))

    def _pool_connect_physical(self, conn_params: dict[str, Any]) -> Any:
        return super().get_new_connection(conn_params)

    def connect(self) -> None:
        self._pool_soft = None
        if self._pool_pending is None and self._pool_reconnect():
            return
        self._pool_connecting = True
        try:
            super().connect()
        finally:
            self._pool_connecting = False
            pending = self._pool_pending
            if pending is not None:  # Django's connect() failed before it took it
                self._pool_pending = None
                pending[0].return_unused(pending[1])
        pool = self._pool_current
        if (
            pool is not None
            and self.pool_init_once
            and type(self).pool_driver_autocommit is not PoolingMixin.pool_driver_autocommit
        ):
            # What the next connect() must find unchanged to take the short way
            # (a driver whose autocommit cannot be read locally never does).
            # Not under RESET_SESSION: the pool resets the session on return,
            # so it is no longer as this wrapper left it (init_connection_state()
            # must run again, as after any reset).
            self._pool_reconnect_state = (
                pool,
                _copy_containers(self.settings_dict),
                _settings_changes,
                self.pool_key_extra(),
                bool(self.settings_dict["AUTOCOMMIT"]) and not pool.options.reset_session,
            )

    @async_unsafe
    def ensure_connection(self) -> None:
        # The request's (in transaction mode, the statement's) checkout after a
        # return to the pool, without Django's connect() machinery where what
        # it would do is proven unnecessary; else Django's. (Errors of a
        # checkout are Django's already.)
        if self.connection is None and self._pool_pending is None and not self.closed_in_transaction:
            soft = self._pool_soft
            if soft is not None:
                # First the connection this wrapper parked last, if nobody had it
                # since (AliasPool.reclaim: still parked, same lease; HikariCP's
                # thread-local bag does the same): its session is exactly as this
                # wrapper left it, set up under its signature, and what
                # pool_adopt_connection() set on the wrapper for it still holds.
                # With the settings what the last full connect() saw
                # (_pool_remember() checked it was on this pool), the rest is
                # what _pool_reconnect() does.
                self._pool_soft = None
                state = self._pool_reconnect_state
                if state is not None and state[2] == _settings_changes and self.settings_dict == state[1]:
                    pool = soft[0]
                    proxied = soft[1]()
                    if proxied is not None:
                        proxied = pool.reclaim(proxied, soft[2])
                    if proxied is not None:
                        if self.pool_driver_autocommit(proxied.dbapi_connection) is True:
                            self._pool_adopt_checkout(pool, proxied, True)
                            return
                        # Autocommit turned off on the driver itself: the full
                        # connect(), on this very connection.
                        self._pool_pending = (pool, proxied)
            # Then any parked connection, or a place in the pool's queue (not
            # when the reclaim left its connection pending for the full connect()).
            if self._pool_pending is None and self._pool_reconnect():
                return
        super().ensure_connection()

    def _pool_reconnect(self) -> bool:
        """Django's connect() for a parked connection, without the work it proves unnecessary.

        Runs only when everything the pool key depends on (settings_dict,
        USE_TZ, pool_key_extra()) equals what the previous full connect() of
        this wrapper saw, the pool is still the alias's live pool, a parked
        connection is ready to be handed out as is (see AliasPool._unpark),
        its session was set up under this wrapper's pool_session_signature(),
        and the driver already runs in autocommit as Django wants. With none
        parked (under contention) it waits in the pool's queue; a connection
        it gets that is not set up for this wrapper (a new one, another
        signature) is left in _pool_pending for the full connect(), whose
        get_new_connection() takes it instead of checking out again. Then
        check_settings(), get_connection_params(), the pool key, set_autocommit()
        and init_connection_state() would change nothing: only the state
        Django's connect() resets is reset, and connection_created is sent.
        Everything else takes the full connect().
        """
        state = self._pool_reconnect_state
        if state is None:
            return False
        pool, seen, changes, extra, _ = state
        s = self.settings_dict
        if (
            pool.retired
            or changes != _settings_changes
            or registry._pools.get(self.alias) is not pool
            or pool.pid != os.getpid()
            or not s["AUTOCOMMIT"]
            or s != seen
            or self.pool_key_extra() != extra
        ):
            self._pool_reconnect_state = None
            return False
        proxied = pool.checkout_parked()
        if proxied is None:
            # None parked (under contention, all in use): wait in line here,
            # as the full connect() would, and keep the short way.
            proxied = self._pool_checkout(pool)
        if (
            info_of(proxied).get(_INIT_DONE) != self.pool_session_signature()
            or self.pool_driver_autocommit(proxied.dbapi_connection) is not True
        ):
            # Not set up for this wrapper (new, or under other settings): the
            # full connect() does that, on this very connection.
            self._pool_pending = (pool, proxied)
            return False
        self._pool_adopt_checkout(pool, proxied)
        return True

    def _pool_adopt_checkout(self, pool: AliasPool, proxied: Any, same_session: bool = False) -> None:
        """The rest of _pool_reconnect(): take *proxied*, a session set up for this wrapper.

        *same_session*: the connection this wrapper had last, nobody else's
        since (ensure_connection): what pool_adopt_connection() set on the wrapper
        for it still holds.
        """
        s = self.settings_dict
        dbapi_connection = proxied.dbapi_connection
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
        self._pool_proxied = proxied
        self._pool_current = pool
        if pool.options.query_timeout is not None:
            self._pool_watch(pool.held(proxied))
        elif self._pool_held is not None:
            self._pool_watch(None)
        self.connection = dbapi_connection
        if not same_session:
            self.pool_adopt_connection(dbapi_connection)
        self.autocommit = True
        if self.run_commit_hooks_on_set_autocommit_on:
            # What set_autocommit(True) does, e.g. after an on_commit() callback raised.
            self.run_and_clear_commit_hooks()
            self.run_commit_hooks_on_set_autocommit_on = False
        if connection_created.receivers:  # (none: send() returns at once)
            if self.pool_checkout != "transaction":
                connection_created.send(sender=self.__class__, connection=self)
            else:
                # What _lease's connect() does around Django's: receivers may run
                # statements, and the connection must not go back halfway through.
                busy, self._pool_lease_busy = self._pool_lease_busy, True
                try:
                    connection_created.send(sender=self.__class__, connection=self)
                finally:
                    self._pool_lease_busy = busy
        if self._pool_lease_released:  # (transaction mode; request mode never sets it)
            self._pool_lease_released = False
        self.run_on_commit: list[Any] = []

    def is_usable(self) -> bool:
        # After close() the connection belongs to the pool and this wrapper
        # holds None, also inside an atomic block (as with Django's own psycopg
        # pool). PostgreSQL's is_usable() expects that; MySQL's would raise
        # AttributeError.
        if self.connection is None:
            return False
        return bool(super().is_usable())

    def close_if_health_check_failed(self) -> None:
        # Django closes here only when is_usable() said no: that physical
        # connection must be discarded, not handed to the next checkout.
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return  # Django's own early exit, without the bookkeeping (hot path)
        self._pool_closing_for = "health_check"  # a plain try/finally: this runs on every request
        try:
            super().close_if_health_check_failed()
        finally:
            self._pool_closing_for = None

    def close_if_unusable_or_obsolete(self) -> None:
        # Django closes here when autocommit was left changed, when the
        # connection outlived CONN_MAX_AGE, or when errors occurred and
        # is_usable() said no. errors_occurred is still True at _close() only
        # in the last case (or when autocommit was left changed after an error).
        if self.connection is None:
            return  # returned already (every request start, under a pool)
        # At a request's end, the common case in one step: when Django would
        # close (autocommit as configured, no errors, past close_at) a
        # connection in no atomic block, in its own thread, and
        # _pool_park_clean() can park it (nothing to clean up, the driver
        # reports it idle): the same as Django's close() and the pool's
        # give_back(), without the layers between. Anything else (or a class
        # that overrides close()) takes that path instead.
        close_at = self.close_at
        if (
            close_at is not None
            and self.autocommit
            and not self.in_atomic_block
            and not self.closed_in_transaction
            and not self._thread_sharing_count
            and self._thread_ident == _thread.get_ident()
            and self.settings_dict["AUTOCOMMIT"]
            and self._pool_plain_close
            and time.monotonic() >= close_at
            and self._pool_park_clean()
        ):
            # What Django's close_if_unusable_or_obsolete() and close() leave.
            self.health_check_done = False
            self.run_on_commit = []
            return
        self._pool_closing_for = "obsolete"  # a plain try/finally: this runs on every request
        try:
            super().close_if_unusable_or_obsolete()
        finally:
            self._pool_closing_for = None

    def _pool_park_clean(self, idle: bool = False) -> bool:
        """_close() in one step for a connection with nothing to clean up.

        No errors since the last commit/rollback, no cursor still open (an
        unfinished iterator(), a cursor kept), no QUERY_TIMEOUT watch, and the
        driver reports it idle: the pool parks it (AliasPool.put_back). Else
        nothing is done and _close() decides. Returns whether it ran. *idle*:
        the caller has just read the driver's transaction state, and it was IDLE.
        """
        proxied = self._pool_proxied
        pool = self._pool_current
        if proxied is None or pool is None or self.errors_occurred or self._pool_held is not None:
            return False
        cursors = self._pool_cursors
        if cursors is not None:
            # Inline, not a call: this runs at every request's end.
            closed = self.pool_cursor_closed
            for ref in cursors:
                wrapper = ref()
                if wrapper is not None and not closed(wrapper.cursor):
                    return False  # _close() cuts it off
            self._pool_cursors = None
        lease = pool.put_back(proxied, self.connection, idle)
        if not lease:
            return False
        self._pool_remember(pool, proxied, lease)
        self._pool_proxied = None
        self._pool_current = None
        self.connection = None
        return True

    def _pool_remember(self, pool: AliasPool, proxied: Any, lease: int) -> None:
        """Note the connection just parked under *lease* for ensure_connection() to take back, if it may."""
        state = self._pool_reconnect_state
        if state is not None and state[0] is pool and state[4]:
            self._pool_soft = (pool, weakref.ref(proxied), lease)

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if self.alias == NO_DB_ALIAS:
            # CREATE/DROP DATABASE (test runner) must not find our idle
            # sessions on the database it creates, clones or drops.
            registry.close_idle()
            return super().get_new_connection(conn_params)
        key = self._pool_key(conn_params)
        pool = registry.get_existing(self.alias)
        if pool is None or pool.key != key:
            # A weak reference: the pool outlives this wrapper (and its thread),
            # and must not keep it, or its checkout, alive.
            template = weakref.ref(self)
            options = self.pool_options
            connect_timeout = options.connect_timeout
            connect_params = conn_params
            if connect_timeout is not None:
                driver = getattr(self.Database, "__name__", self.pool_vendor_name)
                check_connect_timeout(self.alias, options, self.pool_connect_timeout_max(), driver)
                connect_params = self.pool_connect_timeout_params(dict(conn_params), connect_timeout)

            def connect() -> Any:
                wrapper = registry.current_wrapper() or template()
                if wrapper is None:  # pragma: no cover  (connects happen inside checkout())
                    raise RuntimeError("no DatabaseWrapper to open a connection with")
                return wrapper._pool_connect_physical(connect_params)

            mask_pool_logs(self.alias, self.settings_dict.get("PASSWORD"))
            pool = registry.get_pool(self, key, connect, self.pool_description(conn_params))
        pending, self._pool_pending = self._pool_pending, None
        if pending is not None and pending[0] is pool:
            proxied = pending[1]  # checked out by _pool_reconnect() for this connect()
        else:
            if pending is not None:  # pragma: no cover  (its key was checked unchanged just before)
                pending[0].return_unused(pending[1])
            proxied = self._pool_checkout(pool)
        self._pool_proxied = proxied
        self._pool_current = pool
        self._pool_watch(None if pool.options.query_timeout is None else pool.held(proxied))
        dbapi_connection = proxied.dbapi_connection
        self.pool_adopt_connection(dbapi_connection)
        return dbapi_connection

    def _pool_checkout(self, pool: AliasPool) -> Any:
        """pool.checkout() (waits up to TIMEOUT), its errors as Django's naming the alias."""
        registry._tls.wrapper = self
        try:
            return pool.checkout()
        except self.Database.Error as e:
            raise self._pool_connect_error(e, pool) from e
        except (ValueError, TypeError, LookupError, ArithmeticError, OSError) as e:
            # Not a DB-API error: the driver rejected a setting before talking
            # to the server (PyMySQL's ssl files, connect_timeout bounds...).
            raise self._pool_connect_misconfigured(e, pool) from e
        finally:
            registry._tls.wrapper = None

    def _pool_connect_error(self, error: Exception, pool: AliasPool) -> Exception:
        """The driver's connect error as Django's, naming the alias, without the password."""
        from django.db import utils

        message = mask_password(str(error).strip(), self.settings_dict.get("PASSWORD"))
        mask_exception(error, self.settings_dict.get("PASSWORD"))  # raised from it: its traceback shows it
        django_class = getattr(utils, type(error).__name__, None)
        if not (isinstance(django_class, type) and issubclass(django_class, utils.DatabaseError)):
            django_class = utils.OperationalError
        return django_class(
            f"DATABASES[{self.alias!r}]: cannot open a connection to {pool.description} "
            f"(check HOST, PORT, NAME, USER, PASSWORD and OPTIONS): {message}"
        )

    def _pool_connect_misconfigured(self, error: Exception, pool: AliasPool) -> Exception:
        """A driver's non-DB-API connect error as ImproperlyConfigured naming alias and key.

        Errors about files (a missing ssl CA), values (a number out of
        range, a wrong type) or encodings are configuration problems; any
        other OSError (a socket the driver did not wrap) is environmental
        and becomes Django's OperationalError.
        """
        from django.db import utils

        s = self.settings_dict
        message = mask_password(f"{type(error).__name__}: {error}".strip(), s.get("PASSWORD"))
        mask_exception(error, s.get("PASSWORD"))  # raised from it: its traceback shows it
        alias = self.alias
        config_os_errors = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
        if isinstance(error, OSError) and not isinstance(error, config_os_errors):
            import ssl

            if not isinstance(error, ssl.SSLError) or isinstance(error, ssl.SSLCertVerificationError):
                return utils.OperationalError(
                    f"DATABASES[{alias!r}]: cannot open a connection to {pool.description} "
                    f"(check HOST, PORT and OPTIONS): {message}"
                )
        return ImproperlyConfigured(
            f"DATABASES[{alias!r}]: the database driver rejected {_offending_setting(error, s)} "
            f"while connecting to {pool.description}: {message}"
        )

    def _pool_key(self, conn_params: dict[str, Any]) -> Any:
        """The pool key for *conn_params*, frozen once per distinct value.

        Freezing walks every nested value (MySQL's converter table has
        dozens), so the last result is kept and reused while the inputs
        compare equal: a C-level dict comparison instead of a rebuild.
        """
        parts = (conn_params, self.pool_key_extra(), self.settings_dict.get("POOL_OPTIONS"))
        cached = self._pool_key_cache
        if cached is not None and cached[0] == parts:
            return cached[1]
        key = registry.pool_key(*parts)
        self._pool_key_cache = (_copy_containers(parts), key)
        return key

    def init_connection_state(self) -> None:
        proxied = self._pool_proxied
        if proxied is None or not self.pool_init_once:
            super().init_connection_state()
            return
        info = info_of(proxied)
        signature = self.pool_session_signature()
        if self._pool_connecting and info.get(_INIT_DONE) == signature:
            # Only Django's connect() may skip it, and only for a session set
            # up under the same settings; an explicit call (to apply session
            # settings again) runs as it would unpooled.
            return
        super().init_connection_state()
        info[_INIT_DONE] = signature

    # -- QUERY_TIMEOUT: only checkouts of a pool that sets it take these paths --

    def _pool_watch(self, held: Any) -> None:
        """Set the checkout record QUERY_TIMEOUT watches (None: no watch).

        While one is set, this instance makes deadline cursors; the class's
        make_cursor()/make_debug_cursor() serve pools without QUERY_TIMEOUT.
        """
        self._pool_held = held
        d = self.__dict__
        if held is not None:
            if "make_cursor" not in d:
                # Through a weak reference: no cycle that would keep a dead
                # thread's wrapper (and its checkout) until a collection.
                ref = weakref.ref(self)

                def maker(cursor_class: type) -> Any:
                    def make(cursor: Any) -> Any:
                        db: Any = ref()  # alive: its own make_cursor() is running
                        wrapped = cursor_class(cursor, db)
                        db._pool_note_cursor(wrapped)
                        return wrapped

                    return make

                d["make_cursor"] = maker(DeadlineCursorWrapper)
                d["make_debug_cursor"] = maker(DeadlineCursorDebugWrapper)
        elif "make_cursor" in d:
            del d["make_cursor"], d["make_debug_cursor"]

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
        proxied = self._pool_proxied
        if proxied is None:
            super()._close()  # type: ignore[misc]
            return
        pool = self._pool_current
        dbapi_connection = self.connection
        self._pool_proxied = None
        self._pool_current = None
        self._pool_watch(None)
        # The connection belongs to the pool again: this wrapper must not
        # touch it, even if Django keeps the wrapper inside an atomic block.
        self.connection = None
        assert pool is not None
        errors_occurred = bool(self.errors_occurred)
        reason = self._pool_closing_for
        if reason == "health_check" or (reason == "obsolete" and errors_occurred):
            # Django found this connection unusable: never hand it out again.
            self._pool_cursors = None
            pool.discard(proxied)
            return
        if self._pool_cursors is not None:
            # A cursor still open (an unfinished QuerySet.iterator(), a cursor
            # kept past close()) must not outlive the checkout.
            try:
                self._pool_release_cursors(dbapi_connection)
            except Exception as e:
                logger.info(
                    "pool %r: discarding a connection whose open cursors could not be cut off (%s)",
                    pool.alias,
                    type(e).__name__,
                )
                proxied.invalidate(e)
                return
        lease = pool.give_back(proxied, dbapi_connection, errors_occurred)
        if lease:
            self._pool_remember(pool, proxied, lease)

    def _pool_detach_after_fork(self) -> None:
        """In a forked child: drop the inherited checkout without using it."""
        self._pool_soft = None  # the parent's: the child's pools start empty
        proxied = self._pool_proxied
        if proxied is None:
            return
        from . import _fork

        info_of(proxied)["foreign"] = True
        _fork.neutralize(proxied.dbapi_connection, type(self).pool_fileno)
        _fork.keep(proxied)  # never freed here: see _fork.keep()
        self._pool_cursors = None
        self._pool_proxied = None
        self._pool_current = None
        self._pool_watch(None)
        self.connection = None
        self.in_atomic_block = False
        self.savepoint_ids = []
        self.atomic_blocks = []
        self.needs_rollback = False
        self.closed_in_transaction = False


__all__ = ["PoolingMixin"]
