"""``POOL_OPTIONS["CHECKOUT"] = "transaction"``: transaction pooling inside the process.

In this mode a wrapper holds a physical connection only while its session is
needed, and gives it back to the pool at the points where Django's own state
says no session is needed:

* when a cursor is closed in autocommit, outside any atomic block, with no
  other cursor of this wrapper still alive;
* at the end of the outermost atomic block (after Django's commit or
  rollback and ``set_autocommit(True)``, i.e. after on_commit callbacks);
* when Django's request start/end housekeeping runs
  (``close_if_unusable_or_obsolete``).

Giving back runs the request-mode return path (the mixin's ``_close()``:
rolled back if a transaction is open, discarded if broken); while threads
wait, the pool hands the connection straight to the oldest of them, slot
included (``pool_core._fair.FairSlots.park``). The next statement of a wrapper that gave
its connection back takes one again without Django's full ``connect()``
(the mixin's short reconnect): the parked one if ready, else it waits in the pool's queue.
Nothing the session depends on can have changed in between (the mixin's
short-reconnect checks), so only what Django's ``connect()`` resets is reset
and ``connection_created`` is sent, as Django sends it for each connect();
``init_connection_state()`` runs only for a session not yet set up under
this wrapper's settings (a new connection), through the full connect().

The connection stays pinned while something needs the same session: an open
atomic block, autocommit turned off, a cursor not yet closed (server-side
cursors, ``iterator()``), a transaction the driver reports open (an explicit
``BEGIN`` in autocommit, where the driver can tell), thread sharing
(``inc_thread_sharing``, LiveServerTestCase), ``constraint_checks_disabled()``
and an explicit ``pool_core.pinned()``. Session state set by user SQL (``SET``,
temporary tables, ``LISTEN``, advisory locks) and raw ``connection.connection``
use cannot be detected: wrap them in ``pool_core.pinned()`` or an atomic block.

Only wrappers configured with CHECKOUT="transaction" are touched: their
instance gets the overrides below as bound methods, so request mode's code
path (the classes) stays exactly as it is.
"""

from __future__ import annotations

import _thread
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import MethodType
from typing import Any

from .pool import IDLE, IN_TRANSACTION

__all__ = ["install", "pinned", "maybe_release"]

#: Cursor wrapper class -> its subclass that reports close().
_cursor_classes: dict[type, type] = {}


def _lease_cursor_class(cls: type) -> type:
    sub = _cursor_classes.get(cls)
    if sub is None:

        def close(self: Any) -> Any:
            try:
                return self.cursor.close()
            finally:
                db = self.db
                db._pool_lease_cursors.discard(weakref.ref(self))  # equal to the one added
                maybe_release(db)

        sub = type(cls.__name__, (cls,), {"close": close, "__module__": cls.__module__})
        _cursor_classes[cls] = sub
    return sub


def maybe_release(db: Any) -> bool:
    """Give *db*'s physical connection back to the pool if no session is needed now."""
    if (
        db._pool_proxied is None
        or db._pool_lease_busy
        or db._pool_connecting
        or db.in_atomic_block
        or not db.autocommit
        or db._pool_lease_pins
        or db._pool_lease_cursors
        or db._thread_sharing_count
        or db._pool_closing_for is not None
        # Not on another thread: a cursor closed there (a garbage collection
        # finalising an abandoned iterator()) would give back the connection
        # the owner may be about to run a statement on. Its next release
        # point does.
        or db._thread_ident != _thread.get_ident()
    ):
        return False
    connection = db.connection
    if connection is None:
        return False
    try:
        state = db.pool_transaction_state(connection)
    except Exception:
        state = None  # give_back() decides (rollback or discard)
    if state == IN_TRANSACTION:
        return False  # an explicit BEGIN in autocommit: the session is in use
    db._pool_lease_released = True
    if not (db._pool_plain_close and db._pool_park_clean(state == IDLE)):
        db._close()  # the mixin's return path; sets db.connection = None
    return True


# -- per-instance overrides (self is the DatabaseWrapper) ---------------------


def _prepare_cursor(self: Any, cursor: Any) -> Any:
    wrapped = type(self)._prepare_cursor(self, cursor)
    wrapped.__class__ = _lease_cursor_class(type(wrapped))
    # The live cursors, weakly: a set of weak references whose callback drops
    # them once collected (a WeakSet does the same in Python code, several
    # times slower per statement).
    cursors = self._pool_lease_cursors
    cursors.add(weakref.ref(wrapped, cursors.discard))
    return wrapped


def _connect(self: Any) -> None:
    # connection_created receivers and init_connection_state may run
    # statements: never give the connection back halfway through connect().
    # (The mixin's connect() takes a connection again the short way, waiting
    # in line if none is parked: see PoolingMixin._pool_reconnect.)
    self._pool_lease_busy = True
    try:
        type(self).connect(self)
    finally:
        self._pool_lease_busy = False
    self._pool_lease_released = False


def _get_autocommit(self: Any) -> bool:
    if self.connection is None and self._pool_lease_released and self.settings_dict["AUTOCOMMIT"]:
        # Given back in autocommit: the next connect() sets AUTOCOMMIT again.
        # Do not check a connection out only to read a flag (on_commit(),
        # atomic()).
        return True
    return bool(type(self).get_autocommit(self))


def _set_autocommit(self: Any, autocommit: bool, *args: Any, **kwargs: Any) -> None:
    type(self).set_autocommit(self, autocommit, *args, **kwargs)
    if autocommit:
        # The outermost atomic block ended (commit/rollback done, on_commit
        # callbacks run), or user code turned autocommit back on.
        maybe_release(self)


def _close_if_unusable_or_obsolete(self: Any) -> None:
    type(self).close_if_unusable_or_obsolete(self)
    maybe_release(self)  # request start/end: a cursor left open and collected since


def _disable_constraint_checking(self: Any) -> bool:
    # MySQL does it with a session SET: keep that session until re-enabled.
    self._pool_lease_pins += 1
    disabled = False
    try:
        disabled = bool(type(self).disable_constraint_checking(self))
    finally:
        if disabled:
            self._pool_lease_constraint_pins += 1
        else:
            self._pool_lease_pins -= 1
    return disabled


def _enable_constraint_checking(self: Any) -> None:
    try:
        type(self).enable_constraint_checking(self)
    finally:
        if self._pool_lease_constraint_pins:
            self._pool_lease_constraint_pins -= 1
            self._pool_lease_pins -= 1
            maybe_release(self)


_OVERRIDES: dict[str, Callable[..., Any]] = {
    "_prepare_cursor": _prepare_cursor,
    "connect": _connect,
    "get_autocommit": _get_autocommit,
    "set_autocommit": _set_autocommit,
    "close_if_unusable_or_obsolete": _close_if_unusable_or_obsolete,
    "disable_constraint_checking": _disable_constraint_checking,
    "enable_constraint_checking": _enable_constraint_checking,
}


def install(wrapper: Any) -> None:
    """Switch *wrapper* (a fresh DatabaseWrapper instance) to transaction checkout."""
    wrapper._pool_lease_cursors = set()
    wrapper._pool_lease_pins = 0
    wrapper._pool_lease_constraint_pins = 0
    wrapper._pool_lease_busy = False
    wrapper._pool_lease_released = False
    wrapper.pool_checkout = "transaction"
    for name, function in _OVERRIDES.items():
        setattr(wrapper, name, MethodType(function, wrapper))


@contextmanager
def pinned(using: Any = None) -> Iterator[Any]:
    """Keep one physical connection for the block (CHECKOUT="transaction").

    For session state Django cannot see: raw ``connection.connection`` use
    (``COPY``, ``LISTEN``/``notifies()``), ``SET``, temporary tables, advisory
    locks. *using* is an alias (default "default") or a DatabaseWrapper. The
    connection is checked out on entry; yields the DatabaseWrapper. Harmless
    (a plain ensure_connection()) in request mode.
    """
    from django.db import DEFAULT_DB_ALIAS, connections

    if using is None:
        using = DEFAULT_DB_ALIAS
    db: Any = connections[using] if isinstance(using, str) else using
    if getattr(db, "pool_checkout", None) != "transaction":
        db.ensure_connection()
        yield db
        return
    db._pool_lease_pins += 1
    try:
        db.ensure_connection()
        yield db
    finally:
        db._pool_lease_pins -= 1
        maybe_release(db)
