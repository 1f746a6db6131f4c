"""One alias's pool: SQLAlchemy's QueuePool plus the listeners that keep it honest."""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from . import _fork
from .errors import PoolTimeout

if TYPE_CHECKING:
    from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

    from .options import PoolOptions

logger = logging.getLogger("pool_core")

# Transaction states reported by a vendor's ``pool_transaction_state``.
IDLE, IN_TRANSACTION, BROKEN, UNKNOWN = 0, 1, 2, 3

_COUNTERS = (
    "connections_created",
    "connections_closed",
    "connections_recycled",
    "connections_invalidated",
    "checkouts",
    "checkout_timeouts",
    "rollbacks_on_return",
    "session_resets",
    "pings",
    "pings_failed",
    "leaks_detected",
)


class _FairSlots:
    """A first-come, first-served counting semaphore.

    SQLAlchemy's queue lets a thread that just returned a connection take it
    again ahead of threads already waiting, which can starve a waiter into a
    timeout while the pool is healthy. Checkouts take a slot here first, in
    arrival order; a released slot is handed straight to the oldest waiter.
    """

    def __init__(self, slots: int, idle: list[Any] | None = None) -> None:
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        #: AliasPool's parked connections (they keep their slot); see park().
        self._idle: list[Any] = [] if idle is None else idle

    def acquire(self, timeout: float) -> Any:
        """True for a free slot, a parked fairy (slot included), or False on timeout."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            granted = threading.Event()
            self._waiters.append(granted)
        if granted.wait(timeout):
            return True
        with self._lock:
            if granted.is_set():  # handed over just as the wait timed out
                return True
            self._waiters.remove(granted)
            return False

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._free += 1

    def park(self, fairy: Any) -> bool:
        """Keep *fairy* and its slot for the next checkout, unless a thread waits."""
        with self._lock:
            if self._waiters:
                return False
            self._idle.append(fairy)
            return True

    def waiting(self) -> int:
        return len(self._waiters)


class AliasPool:
    """A bounded pool of physical connections for one alias in one process.

    *vendor* is the DatabaseWrapper class; it supplies the driver-specific
    hooks (``pool_ping``, ``pool_transaction_state``, ``pool_fileno``,
    ``pool_reset_session``). *connect* opens one physical connection.
    """

    def __init__(
        self,
        alias: str,
        options: PoolOptions,
        vendor: Any,
        connect: Callable[[], Any],
        key: Any,
        description: str,
    ) -> None:
        self.alias = alias
        self.options = options
        self.vendor = vendor
        self.key = key
        self.description = description  # no password, ever
        self.pid = os.getpid()
        self.retired = False
        self.created_at = time.time()
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._wait_count = 0
        self._wait_sum = 0.0
        self._wait_max = 0.0
        self._waiting = 0
        self._lock = threading.Lock()
        self._held: dict[int, tuple[float, Any]] = {}
        bound = options.max_connections
        #: Connections returned clean and kept checked out of the QueuePool,
        #: LIFO, for the next checkout: the hot path skips SQLAlchemy's
        #: checkout/checkin machinery (see park() and checkout()).
        self._parked: list[Any] = []
        self._slots = None if bound is None else _FairSlots(bound, self._parked)
        self._pool = QueuePool(
            connect,
            pool_size=options.pool_size,
            max_overflow=options.max_overflow,
            timeout=options.timeout,
            recycle=-1 if options.recycle is None else options.recycle,
            use_lifo=options.use_lifo,
            echo=options.echo,
            logging_name=alias,
            reset_on_return=None,  # the reset listener below does it, cheaper
            pre_ping=False,  # the checkout listener pings only idle connections
        )
        event.listen(self._pool, "connect", self._on_connect)
        event.listen(self._pool, "checkout", self._on_checkout)
        event.listen(self._pool, "reset", self._on_reset)
        event.listen(self._pool, "checkin", self._on_checkin)
        event.listen(self._pool, "close", self._on_close)
        event.listen(self._pool, "invalidate", self._on_invalidate)

    def __repr__(self) -> str:
        return f"<AliasPool {self.alias!r} {self.description} pid={self.pid}>"

    # -- checkout / return -------------------------------------------------

    def checkout(self) -> PoolProxiedConnection:
        """Return a proxied connection, waiting up to TIMEOUT seconds.

        Raise PoolTimeout (a Django OperationalError) when none frees up.
        """
        start = time.monotonic()
        fairy: PoolProxiedConnection | None = self._unpark(start, None)
        if fairy is not None:
            with self._lock:
                self._counters["checkouts"] += 1
                self._wait_count += 1
            return fairy
        slots = self._slots
        with self._lock:
            self._waiting += 1
        try:
            if slots is not None:
                deadline = start + self.options.timeout
                while True:
                    got = slots.acquire(max(0.0, deadline - time.monotonic()))
                    if got is True:
                        break
                    if not got:
                        self._bump("checkout_timeouts")
                        raise PoolTimeout(self._timeout_message())
                    # A connection parked meanwhile, slot included.
                    fairy = self._unpark(time.monotonic(), got)
                    if fairy is not None:
                        self._bump("checkouts")
                        return fairy
            try:
                fairy = self._pool.connect()
            except sa_exc.TimeoutError:
                if slots is not None:
                    slots.release()
                self._bump("checkout_timeouts")
                raise PoolTimeout(self._timeout_message()) from None
            except BaseException:
                if slots is not None:
                    slots.release()
                raise
            if slots is not None:
                fairy.info["slot"] = True
        finally:
            waited = time.monotonic() - start
            with self._lock:
                self._waiting -= 1
                self._wait_count += 1
                self._wait_sum += waited
                if waited > self._wait_max:
                    self._wait_max = waited
        return fairy

    def checkout_parked(self) -> Any:
        """The last parked connection if it can be handed out as is, else None. Never waits."""
        if not self._parked:
            return None
        fairy = self._unpark(time.monotonic(), None)
        if fairy is not None:
            with self._lock:
                self._counters["checkouts"] += 1
                self._wait_count += 1
        return fairy

    def _unpark(self, now: float, fairy: Any) -> Any:
        """Hand out a parked connection (the last one if *fairy* is None), or None.

        A parked connection is idle, clean, and still checked out of the
        QueuePool with its slot. One that must be pinged (idle for
        PRE_PING_IDLE), recycled or replaced goes back to the queue instead,
        where the normal checkout deals with it.
        """
        if fairy is None:
            try:
                fairy = self._parked.pop()
            except IndexError:
                return None
        info = fairy.info
        record = fairy._connection_record
        o = self.options
        if o.pre_ping and now - info["last_used"] >= o.pre_ping_idle:
            # Checkin would make it look fresh again: flag it for the ping.
            info["suspect"] = True
            self._unpark_to_queue(fairy)
            return None
        if (
            self.retired
            or record is None
            or record.dbapi_connection is None
            or (o.recycle is not None and time.time() - record.starttime > o.recycle)
            or self._pool._invalidate_time > record.starttime
            or record._soft_invalidate_time > record.starttime
        ):
            self._unpark_to_queue(fairy)
            return None
        del info["clean_return"]
        if o.leak_detection_threshold is not None:
            self._held[id(record)] = (now, traceback.extract_stack(limit=24))
        return fairy

    def _unpark_to_queue(self, fairy: Any) -> None:
        """Give a parked connection (clean, flagged so) back to the QueuePool."""
        try:
            fairy.close()
        except Exception:
            logger.debug("pool %r: error while returning a parked connection", self.alias, exc_info=True)

    def _park(self, fairy: Any) -> bool:
        """Keep a clean returned connection for the next checkout, if nothing argues against it."""
        if self.retired:
            return False
        if self._pool._overflow > 0:  # type: ignore[attr-defined]
            # Overflow connections are open: the queue must see every idle
            # connection so that it closes the surplus, as without parking.
            self._drain_parked()
            return False
        fairy.info["last_used"] = time.monotonic()
        if self._held:
            self._held.pop(id(fairy._connection_record), None)
        if self._slots is None:
            self._parked.append(fairy)
            return True
        return self._slots.park(fairy)

    def _drain_parked(self) -> None:
        while True:
            try:
                fairy = self._parked.pop()
            except IndexError:
                return
            self._unpark_to_queue(fairy)

    def _timeout_message(self) -> str:
        o = self.options
        return (
            f"Connection pool for database alias {self.alias!r} exhausted: "
            f"{self._pool.checkedout()} connections checked out, "
            f"POOL_SIZE={o.pool_size}, MAX_OVERFLOW={o.max_overflow}; "
            f"no connection was returned within TIMEOUT={o.timeout:g} s. "
            "Raise POOL_SIZE/MAX_OVERFLOW, or find code that holds connections "
            "(long transactions, CONN_MAX_AGE, threads that never close)."
        )

    def _bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    # -- listeners ------------------------------------------------------------

    def _on_connect(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        info = record.info
        info["pid"] = os.getpid()
        info["last_used"] = time.monotonic()
        info.pop("suspect", None)
        info.pop("django_init", None)
        self._bump("connections_created")
        logger.debug("pool %r: opened a connection", self.alias)

    def _on_checkout(self, dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        info = record.info
        o = self.options
        if o.pre_ping and (
            info.get("suspect") or time.monotonic() - info.get("last_used", 0.0) >= o.pre_ping_idle
        ):
            self._bump("pings")
            try:
                ok = self.vendor.pool_ping(dbapi_connection)
            except Exception:
                ok = False
            if not ok:
                self._bump("pings_failed")
                logger.info(
                    "pool %r: a pooled connection failed its ping; replacing "
                    "it and every connection opened before it",
                    self.alias,
                )
                raise sa_exc.InvalidatePoolError("pre-ping failed")
            info.pop("suspect", None)
        self._bump("checkouts")
        if o.leak_detection_threshold is not None:
            self._held[id(record)] = (time.monotonic(), traceback.extract_stack(limit=24))

    def _on_reset(self, dbapi_connection: Any, record: ConnectionPoolEntry, state: Any) -> None:
        info = record.info
        if info.get("pid") != os.getpid():
            # Returned in a forked child (e.g. the thread-local of a thread
            # that died with the fork): never talk to the parent's socket.
            _fork.neutralize(dbapi_connection, self.vendor.pool_fileno)
            info["foreign"] = True
            return
        if info.pop("clean_return", False):
            return  # give_back() already did the work
        # A checkout that was never returned (garbage-collected proxy).
        self._bump("leaks_detected")
        logger.warning("pool %r: a connection was garbage-collected without being returned", self.alias)
        status = self.vendor.pool_transaction_state(dbapi_connection)
        if status == BROKEN:
            raise sa_exc.DisconnectionError("connection is broken")
        if status != IDLE:
            self._bump("rollbacks_on_return")
            dbapi_connection.rollback()
        if self.options.reset_session:
            self._bump("session_resets")
            self.vendor.pool_reset_session(dbapi_connection)
            info.pop("django_init", None)

    def _on_checkin(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        info = record.info
        info["last_used"] = time.monotonic()
        if info.pop("slot", False) and self._slots is not None:
            self._slots.release()
        if self._held:
            self._held.pop(id(record), None)
        if dbapi_connection is None or info.get("foreign"):
            return
        if self.retired:
            record.invalidate(soft=False)

    def _on_close(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        self._bump("connections_closed")

    def _on_invalidate(self, dbapi_connection: Any, record: ConnectionPoolEntry, exception: Any) -> None:
        if not self.retired:
            self._bump("connections_invalidated")
            if exception is not None:
                logger.info(
                    "pool %r: discarded a broken connection (%s)", self.alias, type(exception).__name__
                )

    # -- lifecycle ------------------------------------------------------------

    def retire(self) -> None:
        """Close idle connections now and close checked-out ones on return."""
        self.retired = True
        self._drain_parked()
        self._pool.dispose()

    def close_idle(self) -> None:
        """Close every idle connection now; the bound and the pool stay intact."""
        self._drain_parked()
        queue = self._pool._pool  # type: ignore[attr-defined]
        while True:
            try:
                record = queue.get(False)
            except Exception:
                break
            try:
                record.close()
            finally:
                self._pool._dec_overflow()  # type: ignore[attr-defined]

    def give_back(self, fairy: Any, dbapi_connection: Any, errors_occurred: bool) -> None:
        """Return *fairy* after making sure no transaction or breakage leaks.

        Never raises: a connection that cannot be reset is discarded.
        """
        info = fairy.info
        try:
            status = self.vendor.pool_transaction_state(dbapi_connection)
            if status == BROKEN:
                raise ConnectionError("the driver reports the connection as broken")
            if status != IDLE:
                self._bump("rollbacks_on_return")
                dbapi_connection.rollback()
            if self.options.reset_session:
                self._bump("session_resets")
                self.vendor.pool_reset_session(dbapi_connection)
                info.pop("django_init", None)
        except Exception as e:
            logger.info(
                "pool %r: discarding a connection that could not be reset on return (%s)",
                self.alias,
                type(e).__name__,
            )
            fairy.invalidate(e)
            return
        info["clean_return"] = True
        if errors_occurred:
            info["suspect"] = True
        elif self._park(fairy):
            return
        fairy.close()

    def discard(self, fairy: Any) -> None:
        """Close *fairy*'s physical connection instead of returning it.

        For a connection that failed Django's health check (is_usable()):
        the pool slot is freed and the next checkout opens a new connection.
        Never raises.
        """
        logger.info("pool %r: discarding a connection that failed Django's health check", self.alias)
        try:
            fairy.invalidate()
        except Exception:
            logger.debug("pool %r: error while discarding a connection", self.alias, exc_info=True)

    def forget_after_fork(self) -> None:
        """In a forked child: make every idle inherited connection harmless."""
        self.retired = True
        parked, self._parked[:] = list(self._parked), []
        for fairy in parked:
            conn = fairy.dbapi_connection
            fairy.info["foreign"] = True
            if conn is not None:
                _fork.neutralize(conn, self.vendor.pool_fileno)
        q = getattr(self._pool, "_pool", None)
        queue = getattr(q, "queue", ())
        for record in list(queue):
            conn = getattr(record, "dbapi_connection", None)
            if conn is not None:
                record.info["foreign"] = True
                _fork.neutralize(conn, self.vendor.pool_fileno)

    # -- introspection -------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """A snapshot of gauges and counters; every key always present."""
        p = self._pool
        with self._lock:
            counters = dict(self._counters)
            waiting = self._waiting
            wait_count, wait_sum, wait_max = self._wait_count, self._wait_sum, self._wait_max
        parked = len(self._parked)  # idle, though checked out of the QueuePool
        checked_out = p.checkedout() - parked
        idle = p.checkedin() + parked
        o = self.options
        return {
            "alias": self.alias,
            "pid": self.pid,
            "pool_size": o.pool_size,
            "max_overflow": o.max_overflow,
            "connections_open": checked_out + idle,
            "connections_idle": idle,
            "connections_checked_out": checked_out,
            "overflow_in_use": max(0, checked_out + idle - o.pool_size),
            "threads_waiting": waiting,
            **counters,
            "checkout_wait_count": wait_count,
            "checkout_wait_ms_sum": wait_sum * 1000.0,
            "checkout_wait_ms_max": wait_max * 1000.0,
        }

    def overdue(self) -> list[tuple[float, Any]]:
        """Checkouts held longer than LEAK_DETECTION_THRESHOLD: (seconds, stack)."""
        limit = self.options.leak_detection_threshold
        if limit is None:
            return []
        now = time.monotonic()
        return [(now - t, s) for t, s in list(self._held.values()) if now - t >= limit]
