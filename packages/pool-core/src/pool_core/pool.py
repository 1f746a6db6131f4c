"""One alias's pool: SQLAlchemy's QueuePool plus the listeners that keep it honest."""

from __future__ import annotations

import gc
import logging
import os
import select
import socket
import threading
import time
import traceback
import weakref
from bisect import bisect_left
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
    "connections_reclaimed",
)

#: Upper bounds (milliseconds) of the checkout wait histogram; +Inf is implied.
WAIT_BUCKETS_MS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0)


class _Held:
    """One checkout in progress: when, by which thread, from where."""

    __slots__ = ("since", "thread", "stack", "reported", "dead_owner_seen", "unreclaimable_reported")

    def __init__(self, thread: threading.Thread, stack: traceback.StackSummary | None) -> None:
        self.since = time.monotonic()
        self.thread = weakref.ref(thread)
        self.stack = stack
        self.reported = False
        self.dead_owner_seen = False
        self.unreclaimable_reported = False

    def owner_alive(self) -> bool:
        thread = self.thread()
        return thread is not None and thread.is_alive()

    def owner_name(self) -> str:
        thread = self.thread()
        return thread.name if thread is not None else "?"


def format_stack(stack: traceback.StackSummary | None) -> str:
    """The checkout stack, without the pool's and SQLAlchemy's own frames."""
    if not stack:
        return "  (stack not recorded: set LEAK_DETECTION_THRESHOLD to record it)\n"
    frames = list(stack)
    internal = (f"{os.sep}sqlalchemy{os.sep}", f"{os.sep}pool_core{os.sep}")
    while frames and any(part in frames[-1].filename for part in internal):
        frames.pop()
    return "".join(traceback.format_list(frames))


#: Seconds between checks for reclaimable connections while a checkout waits.
_WAIT_SLICE = 1.0


def _shutdown_socket(fd: int) -> None:
    """Shut down a driver's socket (both directions) without closing its descriptor."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except Exception:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()  # closes the duplicate only


class _Grant(threading.Event):
    """A waiter's wake-up call; *fairy* is what it was granted (True: a bare slot)."""

    fairy: Any = True


class _LockGrant:
    """_Grant on a bare lock (no Condition): the wake-up of CHECKOUT="transaction" waiters.

    Those wait at nearly every statement under contention; set() is called
    once, by whoever pops the waiter from the queue.
    """

    __slots__ = ("_lock", "fairy")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.fairy: Any = True

    def set(self) -> None:
        self._lock.release()

    def is_set(self) -> bool:
        return not self._lock.locked()

    def wait(self, timeout: float) -> bool:
        if self._lock.acquire(True, timeout):
            self._lock.release()  # is_set() stays true
            return True
        return False


class _FairSlots:
    """A first-come, first-served counting semaphore.

    SQLAlchemy's queue lets a thread that just returned a connection take it
    again ahead of threads already waiting, which can starve a waiter into a
    timeout while the pool is healthy. Checkouts take a slot here first, in
    arrival order; a released slot is handed straight to the oldest waiter.
    With *handoff* (CHECKOUT="transaction") a clean returned connection is
    handed to the oldest waiter too, slot included, instead of going through
    SQLAlchemy's checkin and checkout again.
    """

    #: Hand parked connections straight to waiters (see park()).
    handoff = False

    def __init__(self, slots: int, idle: list[Any] | None = None) -> None:
        self._slots = slots
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: deque[_Grant | _LockGrant] = deque()
        #: AliasPool's parked connections (they keep their slot); see park().
        self._idle: list[Any] = [] if idle is None else idle

    def acquire(self, timeout: float, while_waiting: Callable[[], None] | None = None) -> Any:
        """True for a free slot, a parked fairy (slot included), or False on timeout.

        Waits up to *timeout* seconds in arrival order. *while_waiting* runs
        once before waiting and then about every second of the wait, without
        losing this waiter's place in the queue.
        """
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            granted = _LockGrant() if self.handoff else _Grant()
            self._waiters.append(granted)
        deadline = time.monotonic() + timeout
        while True:
            if while_waiting is not None:
                while_waiting()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if granted.wait(min(remaining, _WAIT_SLICE)):
                return granted.fairy
        with self._lock:
            if granted.is_set():  # handed over just as the wait timed out
                return granted.fairy
            self._waiters.remove(granted)
            return False

    def release(self) -> None:
        with self._lock:
            if self._free >= 0 and self._waiters:
                self._waiters.popleft().set()
            else:
                self._free += 1  # below zero after a shrink: the slot is gone

    def resize(self, slots: int) -> None:
        """Change the bound; slots taken beyond a smaller bound are gone when released."""
        with self._lock:
            self._free += slots - self._slots
            self._slots = slots
            while self._free > 0 and self._waiters:
                self._free -= 1
                self._waiters.popleft().set()

    def park(self, fairy: Any) -> bool:
        """Keep *fairy* and its slot for the next checkout, unless a thread waits.

        With *handoff* a waiting thread gets *fairy* and its slot at once.
        """
        with self._lock:
            if self._waiters:
                if not self.handoff:
                    return False
                granted = self._waiters.popleft()
                granted.fairy = fairy
                granted.set()
                return True
            self._idle.append(fairy)
            return True

    def waiting(self) -> int:
        return len(self._waiters)


class AliasState:
    """What an alias's pools share across replacements (settings changes).

    A settings change replaces the alias's pool, but the connections of the
    old pool that are still checked out keep their slots until they come
    back, so the alias has one bound whatever its pools' keys; its counters
    and wait histogram keep counting, so stats never go back.
    """

    def __init__(self, bound: int | None) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self.wait_count = 0
        self.wait_sum = 0.0
        self.wait_max = 0.0
        self.wait_buckets = [0] * (len(WAIT_BUCKETS_MS) + 1)
        self.waiting = 0
        #: id(record) -> checkout in progress, of every pool of the alias
        self.held: dict[int, _Held] = {}
        #: Parked connections (see AliasPool._park); only the live pool parks.
        self.parked: list[Any] = []
        self.bound = bound
        self.slots = None if bound is None else _FairSlots(bound, self.parked)
        #: Replaced pools whose connections are still checked out (for the gauges).
        self.retired: list[AliasPool] = []

    def adopt(self, bound: int | None) -> bool:
        """Take a new pool with bound *bound*; False if the bound cannot carry over."""
        if (bound is None) != (self.bound is None):
            return False
        if bound is not None and bound != self.bound:
            assert self.slots is not None
            self.slots.resize(bound)
        self.bound = bound
        return True


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
        state: AliasState | None = None,
    ) -> None:
        self.alias = alias
        self.options = options
        self.vendor = vendor
        self.key = key
        self.description = description  # no password, ever
        self.pid = os.getpid()
        self.retired = False
        #: Connections still checked out of this pool since it was retired.
        self._retired_out = 0
        self.created_at = time.time()
        bound = options.max_connections
        if state is None or state.pid != self.pid or not state.adopt(bound):
            state = AliasState(bound)
        self.state = state
        self._counters = state.counters
        self._wait_buckets = state.wait_buckets
        self._lock = state.lock
        #: id(record) -> checkout in progress (owner thread, stack if recorded)
        self._held = state.held
        #: Connections returned clean and kept checked out of the QueuePool,
        #: LIFO, for the next checkout: the hot path skips SQLAlchemy's
        #: checkout/checkin machinery (see park() and checkout()).
        self._parked = state.parked
        self._slots = state.slots
        if self._slots is not None:
            # One alias, one CHECKOUT: a settings change that switches it
            # replaces the pool, and the new one decides.
            self._slots.handoff = options.checkout == "transaction"
        self._connect = connect
        self._connect_failed = False
        self._last_collect = 0.0
        self._pool = QueuePool(
            self._open,
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

    def _open(self) -> Any:
        """Open one physical connection (QueuePool's creator).

        psycopg 3 leaves the socket of a timed-out connection attempt open in
        a reference cycle until the garbage collector runs; on a congested
        network those sockets can still complete their handshake and hold
        server sessions outside the pool's bound. So the first connect after
        a failed one collects garbage first (at most once a second).
        """
        if self._connect_failed:
            now = time.monotonic()
            if now - self._last_collect >= 1.0:
                self._last_collect = now
                gc.collect()
        try:
            connection = self._connect()
        except BaseException:
            self._connect_failed = True
            raise
        self._connect_failed = False
        return connection

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
            self.count_parked_checkout()
            return fairy
        slots = self._slots
        state = self.state
        with self._lock:
            state.waiting += 1
        try:
            if slots is not None:
                deadline = start + self.options.timeout
                while True:
                    got = slots.acquire(max(0.0, deadline - time.monotonic()), self.reclaim_orphans)
                    if got is True:
                        break
                    if not got:
                        raise self._timed_out()
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
                raise self._timed_out() from None
            except BaseException:
                if slots is not None:
                    slots.release()
                raise
            if slots is not None:
                fairy.info["slot"] = True
        finally:
            waited = time.monotonic() - start
            bucket = bisect_left(WAIT_BUCKETS_MS, waited * 1000.0)
            with self._lock:
                state.waiting -= 1
                state.wait_count += 1
                state.wait_sum += waited
                self._wait_buckets[bucket] += 1
                if waited > state.wait_max:
                    state.wait_max = waited
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("pool %r: checked out a connection in %.1f ms", self.alias, waited * 1000.0)
        return fairy

    def _timed_out(self) -> PoolTimeout:
        self._bump("checkout_timeouts")
        message = self._timeout_message()
        logger.warning("pool %r: checkout timed out: %s", self.alias, message)
        return PoolTimeout(message)

    def checkout_parked(self) -> Any:
        """The last parked connection if it can be handed out as is, else None. Never waits.

        The caller counts it with count_parked_checkout() if it keeps it, or
        gives it back with _unpark_to_queue().
        """
        if not self._parked:
            return None
        return self._unpark(time.monotonic(), None)

    def count_parked_checkout(self) -> None:
        """Stats of a checkout served from the parked connections (no wait)."""
        with self._lock:
            self._counters["checkouts"] += 1
            self.state.wait_count += 1
            self._wait_buckets[0] += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("pool %r: checked out a parked connection", self.alias)

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
        if fairy._pool is not self._pool:
            # Parked by a pool this one replaced just before it was retired.
            self._unpark_to_queue(fairy)
            return None
        info = fairy.info
        record = fairy._connection_record
        o = self.options
        if o.pre_ping and (
            now - info["last_used"] >= o.pre_ping_idle or self._has_pending_input(fairy.dbapi_connection)
        ):
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
        stack = None if o.leak_detection_threshold is None else traceback.extract_stack(limit=32)
        self._held[id(record)] = _Held(threading.current_thread(), stack)
        return fairy

    def _unpark_to_queue(self, fairy: Any) -> None:
        """Give a parked (or just unparked, unused) clean connection back to the QueuePool."""
        fairy.info["clean_return"] = True  # nothing to reset: not a leak either
        self._held.pop(id(fairy._connection_record), None)
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
        self._held.pop(id(fairy._connection_record), None)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("pool %r: connection returned (parked)", self.alias)
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
            info.get("suspect")
            or time.monotonic() - info.get("last_used", 0.0) >= o.pre_ping_idle
            or self._has_pending_input(dbapi_connection)
        ):
            self._bump("pings")
            try:
                ok = self._ping(dbapi_connection)
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
        stack = None if o.leak_detection_threshold is None else traceback.extract_stack(limit=32)
        self._held[id(record)] = _Held(threading.current_thread(), stack)

    def _ping(self, dbapi_connection: Any) -> bool:
        """The vendor's ping, bounded by CONNECT_TIMEOUT when it is set.

        A ping that gets no answer in time (a silent network) has its socket
        shut down, which makes the driver's blocked read return at once; the
        connection then counts as failed and is replaced.
        """
        limit = self.options.connect_timeout
        try:
            # Read now: some drivers (mysqlclient) refuse calls from another
            # thread while the ping is running.
            fd = self.vendor.pool_fileno(dbapi_connection)
        except Exception:
            fd = None
        if limit is None or fd is None or fd < 0:
            return bool(self.vendor.pool_ping(dbapi_connection))
        guard = threading.Lock()
        state = {"done": False, "fired": False}

        def sever() -> None:
            with guard:
                if state["done"]:
                    return
                state["fired"] = True
            logger.info("pool %r: pre-ping got no answer within CONNECT_TIMEOUT=%g s", self.alias, limit)
            _shutdown_socket(fd)

        timer = threading.Timer(limit, sever)
        timer.daemon = True
        timer.start()
        try:
            ok = bool(self.vendor.pool_ping(dbapi_connection))
        finally:
            with guard:
                state["done"] = True
            timer.cancel()
        return ok and not state["fired"]

    def _has_pending_input(self, dbapi_connection: Any) -> bool:
        """True if the server sent something to a connection nobody was using.

        An idle pooled connection has nothing to read; one the server killed
        (pg_terminate_backend, KILL, a restart) reads a goodbye or EOF. One
        poll() with no wait, no round trip: it catches connections killed
        within PRE_PING_IDLE. A driver without a socket to look at (JDBC,
        ODBC) relies on the idle window alone.
        """
        try:
            fd = self.vendor.pool_fileno(dbapi_connection)
        except Exception:
            return True
        if fd is None or fd < 0:
            return False
        try:
            poll = getattr(select, "poll", None)  # gevent's monkey-patching removes it
            if poll is not None:
                poller = poll()
                poller.register(fd, select.POLLIN | select.POLLPRI)
                return bool(poller.poll(0))
            if fd < 1024:  # select()'s FD_SETSIZE
                return bool(select.select([fd], [], [], 0)[0])
        except (OSError, ValueError):
            return True
        return False

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
        # A checkout that was never returned (garbage-collected proxy, e.g.
        # the thread-local connection of a thread that ended).
        self._bump("connections_reclaimed")
        held = self._held.get(id(record))
        logger.warning(
            "pool %r: reclaimed a connection that was garbage-collected without being "
            "returned (checked out by thread %r); checked out at:\n%s",
            self.alias,
            held.owner_name() if held else "?",
            format_stack(held.stack if held else None),
        )
        status = self.vendor.pool_transaction_state(dbapi_connection)
        if status == BROKEN:
            raise sa_exc.DisconnectionError("connection is broken")
        if status != IDLE:
            self._bump("rollbacks_on_return")
            dbapi_connection.rollback()
        if self.options.reset_session:
            self._bump("session_resets")
            if not self.vendor.pool_reset_session(dbapi_connection):
                info["reset_by_reconnect"] = True
                raise sa_exc.DisconnectionError("session reset by reconnecting")
            info.pop("django_init", None)

    def _on_checkin(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        info = record.info
        info["last_used"] = time.monotonic()
        if info.pop("slot", False) and self._slots is not None:
            self._slots.release()
        self._held.pop(id(record), None)
        if self.retired:
            with self._lock:
                self._retired_out -= 1
        if dbapi_connection is None or info.get("foreign"):
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("pool %r: connection returned", self.alias)
        if self.retired:
            record.invalidate(soft=False)

    def _on_close(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        self._bump("connections_closed")
        recycle = self.options.recycle
        if (
            recycle is not None
            and not self.retired
            and time.time() - getattr(record, "starttime", time.time()) > recycle
        ):
            self._bump("connections_recycled")
            logger.info("pool %r: recycled a connection older than RECYCLE=%gs", self.alias, recycle)

    def _on_invalidate(self, dbapi_connection: Any, record: ConnectionPoolEntry, exception: Any) -> None:
        if record.info.pop("reset_by_reconnect", False):
            logger.debug("pool %r: closed a connection to reset its session (RESET_SESSION)", self.alias)
            return
        if not self.retired:
            self._bump("connections_invalidated")
            logger.info(
                "pool %r: discarded a connection (%s)",
                self.alias,
                "invalidated" if exception is None else type(exception).__name__,
            )

    # -- lifecycle ------------------------------------------------------------

    def retire(self) -> None:
        """Close idle connections now and close checked-out ones on return."""
        self.retired = True
        self._drain_parked()
        with self._lock:
            # QueuePool forgets its checked-out connections when disposed: count them here.
            self._retired_out = self._pool.checkedout()
            if self._retired_out > 0:
                self.state.retired.append(self)
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
                if not self.vendor.pool_reset_session(dbapi_connection):
                    # No in-place reset for this driver: a new session is the reset.
                    info["reset_by_reconnect"] = True
                    fairy.invalidate()
                    return
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
        """A snapshot of gauges and counters; every key always present.

        Cheap (one short lock, no I/O): fine to call per request.
        """
        p = self._pool
        state = self.state
        with self._lock:
            counters = dict(self._counters)
            waiting = state.waiting
            wait_count, wait_sum, wait_max = state.wait_count, state.wait_sum, state.wait_max
            buckets = list(self._wait_buckets)
            # Replaced pools' connections still checked out hold slots too.
            state.retired[:] = [r for r in state.retired if r._retired_out > 0]
            replaced = sum(r._retired_out for r in state.retired)
        parked = len(self._parked)  # idle, though checked out of the QueuePool
        checked_out = p.checkedout() - parked + replaced
        idle = p.checkedin() + parked
        o = self.options
        cumulative: dict[str, int] = {}
        running = 0
        for bound, n in zip((*WAIT_BUCKETS_MS, float("inf")), buckets, strict=True):
            running += n
            cumulative["+Inf" if bound == float("inf") else f"{bound:g}"] = running
        return {
            "alias": self.alias,
            "pid": self.pid,
            "vendor": self.description.split(" ", 1)[0],
            "pool_size": o.pool_size,
            "max_overflow": o.max_overflow,
            "max_connections": o.max_connections,
            "connections_open": checked_out + idle,
            "connections_idle": idle,
            "connections_checked_out": checked_out,
            "overflow_in_use": max(0, checked_out + idle - o.pool_size),
            "threads_waiting": waiting,
            **counters,
            "checkout_wait_count": wait_count,
            "checkout_wait_ms_sum": wait_sum * 1000.0,
            "checkout_wait_ms_max": wait_max * 1000.0,
            "checkout_wait_ms_p50": _quantile(buckets, wait_count, 0.50, wait_max),
            "checkout_wait_ms_p95": _quantile(buckets, wait_count, 0.95, wait_max),
            "checkout_wait_ms_p99": _quantile(buckets, wait_count, 0.99, wait_max),
            "checkout_wait_ms_buckets": cumulative,
        }

    def overdue(self) -> list[tuple[float, str, str]]:
        """Checkouts held longer than LEAK_DETECTION_THRESHOLD: (seconds, thread, stack)."""
        limit = self.options.leak_detection_threshold
        if limit is None:
            return []
        now = time.monotonic()
        return [
            (now - h.since, h.owner_name(), format_stack(h.stack))
            for h in list(self._held.values())
            if now - h.since >= limit
        ]

    def housekeep(self) -> None:
        """Log new leaks, reclaim connections of ended threads (housekeeper thread)."""
        limit = self.options.leak_detection_threshold
        if limit is not None:
            now = time.monotonic()
            for held in list(self._held.values()):
                if not held.reported and now - held.since >= limit:
                    held.reported = True
                    self._bump("leaks_detected")
                    logger.warning(
                        "pool %r: possible connection leak: a connection has been checked out for "
                        "%.1f s (LEAK_DETECTION_THRESHOLD=%gs) by thread %r; checked out at:\n%s",
                        self.alias,
                        now - held.since,
                        limit,
                        held.owner_name(),
                        format_stack(held.stack),
                    )
        self.reclaim_orphans()

    def reclaim_orphans(self) -> None:
        """Return connections whose owner thread has ended without returning them.

        A thread that dies holding its thread-local Django connection leaves
        it to the garbage collector, which may not run for a long time: the
        pool would stay short of a connection. Runs when a checkout has to
        wait (so a dead thread never starves the pool) and on housekeeper
        ticks. Collecting garbage makes SQLAlchemy's finaliser return the
        connection (rolled back); one that is still referenced is left alone.
        """
        orphans = [h for h in list(self._held.values()) if not h.dead_owner_seen and not h.owner_alive()]
        if not orphans:
            return
        for held in orphans:
            held.dead_owner_seen = True
        gc.collect()
        for held in list(self._held.values()):
            if held.dead_owner_seen and not held.unreclaimable_reported:
                held.unreclaimable_reported = True
                logger.warning(
                    "pool %r: thread %r ended without returning its connection, which is still "
                    "referenced elsewhere (shared with another thread?), so it was not reclaimed; "
                    "checked out at:\n%s",
                    self.alias,
                    held.owner_name(),
                    format_stack(held.stack),
                )


def _quantile(buckets: list[int], count: int, q: float, maximum: float) -> float:
    """Estimate a quantile (ms) from the histogram, interpolating in its bucket."""
    if count == 0:
        return 0.0
    rank = q * count
    seen = 0
    lower = 0.0
    for i, n in enumerate(buckets):
        upper = WAIT_BUCKETS_MS[i] if i < len(WAIT_BUCKETS_MS) else maximum * 1000.0
        if n and seen + n >= rank:
            upper = min(upper, maximum * 1000.0)
            return lower + (upper - lower) * (rank - seen) / n
        seen += n
        lower = WAIT_BUCKETS_MS[i] if i < len(WAIT_BUCKETS_MS) else lower
    return maximum * 1000.0
