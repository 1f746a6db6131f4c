"""One alias's pool: SQLAlchemy's QueuePool plus the listeners that keep it honest."""

from __future__ import annotations

import gc
import itertools
import logging
import os
import random
import select
import threading
import time
import traceback
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from . import _fork, _housekeeper, _leaks, _sqla
from ._fair import CLOSED, SHED, FairSlots
from ._leaks import Held
from ._sqla import INIT_DONE, RecordInfo, info_of
from ._stats import COUNTERS, WAIT_BUCKETS_MS, new_histogram, wait_stats
from .errors import PoolError, PoolTimeout
from .hooks import PoolHooks, TransactionState

if TYPE_CHECKING:
    from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

    from .options import PoolOptions

logger = logging.getLogger("pool_core")

# The vendor's pool_transaction_state() values, as module constants for the hot path.
IDLE, IN_TRANSACTION, BROKEN, UNKNOWN = (
    TransactionState.IDLE,
    TransactionState.IN_TRANSACTION,
    TransactionState.BROKEN,
    TransactionState.UNKNOWN,
)

#: What AliasPool._reset_on_return() finds a reset cannot fix.
_BROKEN, _RECONNECT = object(), object()


#: Seconds between the orphan scans that waiting checkouts run (see _reclaim_while_waiting).
RECLAIM_INTERVAL = 0.05

#: Each connection's lifetime is RECYCLE shortened by a random fraction up to
#: this (as psycopg_pool does), so connections opened together are not all
#: replaced in the same second.
RECYCLE_JITTER = 0.05


class AliasState:
    """What an alias's pools share across replacements (settings changes).

    A settings change replaces the alias's pool, but the connections of the
    old pool that are still checked out keep their slots until they come
    back, so the alias has one bound whatever its pools' keys; its counters
    and wait histogram keep counting, so stats never go back.
    """

    def __init__(self, bound: int | None) -> None:
        self.pid = os.getpid()
        # Re-entrant: a garbage collection started by an allocation under it
        # runs SQLAlchemy's finalizers, which return a dead thread's checkout
        # through the listeners (_on_checkin takes this lock) on the same thread.
        self.lock = threading.RLock()
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.wait_count = 0
        self.wait_sum = 0.0
        self.wait_max = 0.0
        self.wait_buckets = new_histogram()
        #: Checkouts served from the parked connections (no wait): counted
        #: without the lock (next() on itertools.count is atomic); stats()
        #: adds them to "checkouts", the wait count and the 0 ms bucket.
        self.parked_checkouts = itertools.count()
        self.waiting = 0
        #: id(record) -> checkout in progress, of every pool of the alias
        self.held: dict[int, Held] = {}
        #: Parked connections (see AliasPool._park); only the live pool parks.
        self.parked: list[Any] = []
        self.bound = bound
        self.slots = None if bound is None else FairSlots(bound, self.parked)
        #: time.monotonic() before which a waiting checkout skips reclaim_orphans().
        self.next_reclaim = 0.0
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


#: Lease numbers: every hand-out of a connection (a QueuePool checkout or a
#: parked connection taken) stamps its record with the next one, so that a
#: wrapper can tell, by the number it saw when it parked the connection,
#: that nobody took the connection since (see AliasPool.reclaim). next() on
#: itertools.count is atomic under the GIL.
_leases = itertools.count(1)


def _count_of(counter: itertools.count[int]) -> int:
    """The value the next next(*counter*) returns (an itertools.count with step 1)."""
    return int(repr(counter)[6:-1])  # "count(N)"


def _libc_poll() -> tuple[Any, Any] | None:
    """libc's poll() through ctypes.PyDLL (the GIL stays held) and its pollfd, or None."""
    try:
        import ctypes

        # No argtypes: converting them costs more than the call. Called as
        # poll(byref(pollfd), 1, 0): a pointer and two C ints.
        function = ctypes.PyDLL(None).poll
        function.restype = ctypes.c_int

        class PollFd(ctypes.Structure):
            _fields_ = (("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short))

    except (ImportError, OSError, AttributeError, TypeError):
        return None
    return function, PollFd


_libc = _libc_poll()
_c_poll: Any = None if _libc is None else _libc[0]


def _poller(fd: int) -> Any:
    """What _poll_now() polls *fd* with: a pollfd for libc's poll(), else a select.poll()."""
    if _libc is not None:
        import ctypes

        pollfd = _libc[1](fd, select.POLLIN | select.POLLPRI, 0)
        return (pollfd, ctypes.byref(pollfd))  # the pollfd kept alive beside its reference
    poll = getattr(select, "poll", None)  # gevent's monkey-patching removes it
    if poll is None:
        return None
    poller = poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return poller


def _poll_now(poller: Any) -> bool:
    """Whether the socket behind *poller* (from _poller()) has input or hung up; never waits.

    libc's poll() with a zero timeout never blocks, so it is called with the
    GIL held; select.poll() releases it.
    """
    if type(poller) is tuple:
        return bool(_c_poll(poller[1], 1, 0))  # > 0: readable, hung up or invalid; -1: an error
    try:
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class AliasPool:
    """A bounded pool of physical connections for one alias in one process.

    *hooks* is the vendor contract (pool_core.hooks.PoolHooks: in practice
    the DatabaseWrapper class, which has the vendor's hooks among its bases);
    the pool calls its static driver hooks (``pool_ping``,
    ``pool_transaction_state``, ``pool_fileno``, ``pool_reset_session``).
    *connect* opens one physical connection.
    """

    def __init__(
        self,
        alias: str,
        options: PoolOptions,
        hooks: type[PoolHooks],
        connect: Callable[[], Any],
        key: Any,
        description: str,
        state: AliasState | None = None,
    ) -> None:
        self.alias = alias
        self.options = options
        self.hooks = hooks
        self.key = key
        self.description = description  # no password, ever
        self.pid = os.getpid()
        self.retired = False
        #: Connections checked out of the QueuePool (parked ones included),
        #: counted by the checkout and checkin listeners under the lock, so that
        #: retire() reads a count no return in progress can miss.
        self._out = 0
        #: Connections still checked out of this pool since it was retired.
        self._retired_out = 0
        #: Set by drain(): checkouts fail with PoolError.
        self.draining = False
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
        self._parked_checkouts = state.parked_checkouts
        self._slots = state.slots
        self._connect = connect
        self._connect_failed = False
        self._last_collect = 0.0
        self._query_timeout_warned = False
        #: Bounded, and IDLE_TIMEOUT is not 0: the QueuePool keeps every
        #: connection up to the bound (no overflow closed on return), and
        #: shrink_idle() closes the surplus once it has been idle long enough.
        self._keeps_overflow = bound is not None and options.idle_timeout != 0
        #: The housekeeper has surplus connections to close now and then.
        self._shrinks = self._keeps_overflow and options.idle_timeout is not None and options.max_overflow > 0
        size, overflow = options.pool_size, options.max_overflow
        if self._keeps_overflow and bound is not None:
            size, overflow = bound, 0
        self._pool = _sqla.RetirableQueuePool(
            self._open,
            pool_size=size,
            max_overflow=overflow,
            timeout=options.timeout,
            recycle=-1,  # per connection, with jitter: see _on_connect and _on_checkout
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
        proxied: PoolProxiedConnection | None = self.checkout_parked(start)
        if proxied is not None:
            return proxied
        if self.draining:
            raise self._drained_error()
        slots = self._slots
        state = self.state
        with self._lock:
            state.waiting += 1
        handed = False  # a parked connection handed over while waiting: counted below
        try:
            if slots is not None:
                deadline = start + self.options.timeout
                while True:
                    got = slots.acquire(
                        max(0.0, deadline - time.monotonic()),
                        self._reclaim_while_waiting,
                        self.options.max_waiting,
                    )
                    if got is True:
                        break
                    if got is SHED:
                        raise self._shed()
                    if got is CLOSED:
                        raise self._drained_error()
                    if not got:
                        raise self._timed_out()
                    # A connection parked meanwhile, slot included.
                    proxied = self._unpark(time.monotonic(), got, waited=True)
                    if proxied is not None:
                        handed = True
                        return proxied
            try:
                proxied = self._pool.connect()
            except BaseException as e:
                if slots is not None:
                    slots.release()
                if isinstance(e, sa_exc.TimeoutError):
                    raise self._timed_out() from None
                if isinstance(e, sa_exc.SQLAlchemyError):
                    # SQLAlchemy gives up after the connection and its replacement
                    # both failed the checkout's check (the ping, RECYCLE):
                    # InvalidRequestError("This connection is closed").
                    raise PoolError(
                        f"Connection pool for database alias {self.alias!r}: no working connection: "
                        "a pooled connection and a new one both failed the checkout's ping; the "
                        f"database accepts connections but does not answer ({type(e).__name__})."
                    ) from None
                raise
            if slots is not None:
                info_of(proxied)["slot"] = True
        finally:
            waited = time.monotonic() - start
            bucket = bisect_left(WAIT_BUCKETS_MS, waited * 1000.0)
            with self._lock:
                if handed:
                    self._counters["checkouts"] += 1
                state.waiting -= 1
                state.wait_count += 1
                state.wait_sum += waited
                self._wait_buckets[bucket] += 1
                if waited > state.wait_max:
                    state.wait_max = waited
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("pool %r: checked out a connection in %.1f ms", self.alias, waited * 1000.0)
        return proxied

    def _timed_out(self) -> PoolTimeout:
        self._bump("checkout_timeouts")
        message = self._timeout_message()
        logger.warning("pool %r: checkout timed out: %s", self.alias, message)
        return PoolTimeout(message)

    def _shed(self) -> PoolTimeout:
        self._bump("checkouts_shed")
        o = self.options
        message = (
            f"Connection pool for database alias {self.alias!r} exhausted: "
            f"{self._pool.checkedout() - len(self._parked)} connections checked out and "
            f"MAX_WAITING={o.max_waiting} threads already waiting; not queueing another "
            f"(POOL_SIZE={o.pool_size}, MAX_OVERFLOW={o.max_overflow})."
        )
        logger.warning("pool %r: checkout refused: %s", self.alias, message)
        return PoolTimeout(message)

    def _drained_error(self) -> PoolError:
        return PoolError(
            f"Connection pool for database alias {self.alias!r} is closed (pool_core.drain()); "
            "pool_core.dispose() makes the next checkout open a new pool."
        )

    def checkout_parked(self, now: float | None = None) -> Any:
        """The last parked connection if it can be handed out as is, else None. Never waits.

        Counted as a checkout; the caller gives it back with return_unused()
        if it does not use it. *now*: time.monotonic(), if the caller has it.
        """
        if not self._parked:
            return None
        return self._unpark(time.monotonic() if now is None else now, None)

    def _unpark(self, now: float, proxied: Any, waited: bool = False) -> Any:
        """Hand out a parked connection (the last one if *proxied* is None), or None.

        A parked connection is idle, clean, and still checked out of the
        QueuePool with its slot. One that must be pinged (idle for
        PRE_PING_IDLE), recycled or replaced goes back to the queue instead,
        where the normal checkout deals with it. Counted as a checkout that
        did not wait (see stats()) unless *waited* (the caller counts it).
        """
        if proxied is None:
            try:
                proxied = self._parked.pop()
            except IndexError:
                return None
        # SQLAlchemy privates, read directly on the hot path: see pool_core._sqla.
        if proxied._pool is not self._pool:
            # Parked by a pool this one replaced just before it was retired.
            self.return_unused(proxied)
            return None
        record = proxied._connection_record
        info: RecordInfo = record.info  # info_of(record), inline
        o = self.options
        poller = info.get("poller")  # the idle poll, inline when its poller is made
        # (_poll_now() inline for a libc pollfd: one call less per checkout)
        if o.pre_ping and (
            now - info["last_used"] >= o.pre_ping_idle
            or (
                (_c_poll(poller[1], 1, 0) if type(poller) is tuple else _poll_now(poller))
                if poller
                else self._has_pending_input(record.dbapi_connection, info)
            )
        ):
            # Checkin would make it look fresh again: flag it for the ping.
            info["suspect"] = True
            self.return_unused(proxied)
            return None
        if (
            self.retired
            or record.dbapi_connection is None
            or now >= info.get("recycle_at", now + 1.0)
            or self._pool._invalidate_time > record.starttime
            or record._soft_invalidate_time > record.starttime
        ):
            self.return_unused(proxied)
            return None
        del info["clean_return"]
        info["lease"] = next(_leases)
        stack = None if o.leak_detection_threshold is None else traceback.extract_stack(limit=32)
        self._held[id(record)] = Held(threading.current_thread(), stack, info.get("fd"), now)
        if not waited:
            next(self._parked_checkouts)
        return proxied

    def reclaim(self, proxied: Any, lease: int) -> Any:
        """Take back *proxied*, parked by the caller with lease *lease*, if nobody took it since.

        The thread-affine fast path of a wrapper's next checkout (HikariCP's
        ConcurrentBag does the same with a thread-local list): the connection
        this wrapper parked last is still parked and nobody has had it since,
        so the session is exactly as this wrapper left it. The checks of any
        parked checkout still run (_unpark: idle poll, PRE_PING_IDLE, RECYCLE,
        invalidation). Returns *proxied*, counted as a checkout, or None: then
        the caller checks out as usual. Never waits.
        """
        record = proxied._connection_record  # see pool_core._sqla
        if record is None:
            return None  # back in the queue since: not the session this wrapper left
        # info_of(record), inline: the same dict as long as *proxied* is checked out.
        info: RecordInfo = record.info
        if info.get("lease") != lease:
            # Someone had it since (it may be theirs right now, or parked
            # again, or back in the queue): not the session this wrapper left.
            # Read without taking it: the parked list and the connection's
            # idle time stay as they are.
            return None
        parked = self._parked
        try:
            # The take is one call, atomic as the other takers' pop(): of two
            # threads, one gets it. What the look at the last one saw may be
            # gone by the pop (a thread switch between the two), so the pop
            # takes whatever is last and checks it is this one.
            if parked[-1] is proxied:
                got = parked.pop()
                if got is not proxied:
                    # Another checkout took this one meanwhile, and the pop got
                    # the one parked before it: parked again, idle time kept.
                    self._repark(got)
                    return None
            else:
                parked.remove(proxied)
        except (IndexError, ValueError):
            return None  # taken meanwhile (a checkout, a waiter, the housekeeper)
        if info.get("lease") != lease:
            # Taken, used and parked again between the two reads: back where
            # it was, for anyone.
            self._repark(proxied)
            return None
        return self._unpark(time.monotonic(), proxied)

    def _repark(self, proxied: Any) -> None:
        """Put a parked connection that reclaim() took off the list but may not use back, as it was.

        Its idle time and record stay as they are; a waiter that came in line
        meanwhile gets it (FairSlots.park).
        """
        if self._slots is None:
            self._parked.append(proxied)
        else:
            self._slots.park(proxied)
        if self.retired:
            self._drain_parked()  # retired meanwhile: see _park()

    def return_unused(self, proxied: Any) -> None:
        """Give a parked, or checked-out and unused, clean connection back to the QueuePool."""
        info_of(proxied)["clean_return"] = True  # nothing to reset: not a leak either
        self._held.pop(id(_sqla.record_of(proxied)), None)
        try:
            proxied.close()
        except Exception:
            logger.debug("pool %r: error while returning a parked connection", self.alias, exc_info=True)

    def _park(self, proxied: Any, info: RecordInfo) -> int:
        """Keep a clean returned connection for the next checkout, if nothing argues against it.

        *info* is its record's. Returns the lease it was checked out under
        (for reclaim()), read before parking (a waiter it is handed to gets
        the next one); 0 if it was not parked.
        """
        if self.retired:
            return 0
        # SQLAlchemy privates, read directly on the hot path: see pool_core._sqla.
        if self._pool._overflow > 0:
            # Overflow connections are open: the queue must see every idle
            # connection so that it closes the surplus, as without parking.
            self._drain_parked()
            return 0
        info["last_used"] = time.monotonic()
        self._held.pop(id(proxied._connection_record), None)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("pool %r: connection returned (parked)", self.alias)
        lease = info.get("lease", -1)
        if self._slots is None:
            self._parked.append(proxied)
        elif not self._slots.park(proxied):
            return 0
        if self.retired:
            # Retired (drain(), dispose(), a settings change) since the look
            # above: retire() may have emptied the parked list before this
            # connection joined it. retire() sets retired first, so one of the
            # two empties it. (Parked meanwhile counts as parked: the caller
            # must not return the connection again.)
            self._drain_parked()
        return lease

    def _drain_parked(self) -> None:
        while True:
            try:
                proxied = self._parked.pop()
            except IndexError:
                return
            self.return_unused(proxied)

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
        info = info_of(record)
        info["pid"] = os.getpid()
        info["last_used"] = time.monotonic()
        info.pop("suspect", None)
        info.pop(INIT_DONE, None)
        info.pop("query_timed_out", None)
        info.pop("poller", None)
        if self.options.query_timeout is not None:
            # Read once, in the thread that opened it: the housekeeper shuts
            # this socket down when a query runs past QUERY_TIMEOUT.
            try:
                fd = self.hooks.pool_fileno(dbapi_connection)
            except Exception:
                fd = None
            if fd is None or fd < 0:
                fd = None
                if not self._query_timeout_warned:
                    self._query_timeout_warned = True
                    logger.warning(
                        "pool %r: QUERY_TIMEOUT has no effect on %s: the driver owns its socket; "
                        "use the driver's own query or socket timeout (see docs/network.md)",
                        self.alias,
                        self.description,
                    )
            info["fd"] = fd
        info.pop("recycle_due", None)
        recycle = self.options.recycle
        if recycle is None:
            info.pop("recycle_at", None)
        else:
            info["recycle_at"] = info["last_used"] + recycle * (1.0 - random.uniform(0.0, RECYCLE_JITTER))
        self._bump("connections_created")
        logger.debug("pool %r: opened a connection", self.alias)
        if self._shrinks and self._pool.checkedout() + self._pool.checkedin() > self.options.pool_size:
            _housekeeper.ensure_running()  # to close the surplus once idle (IDLE_TIMEOUT)

    def _on_checkout(self, dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        info = info_of(record)
        o = self.options
        if "recycle_at" in info and time.monotonic() >= info["recycle_at"]:
            info["recycle_due"] = True  # for _on_invalidate: a recycle, not a failure
            raise sa_exc.DisconnectionError("older than RECYCLE")
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
        with self._lock:
            # Under the lock with retire()'s count, as _on_checkin: a checkout
            # that completes after it (a thread already inside checkout()) is
            # counted as still out of the retired pool.
            self._counters["checkouts"] += 1
            self._out += 1
            info["counted_out"] = True  # for _on_checkin: a checkout that completed
            if self.retired:
                self._retired_out += 1
                if self._retired_out == 1 and self not in self.state.retired:
                    self.state.retired.append(self)
        info["lease"] = next(_leases)
        stack = None if o.leak_detection_threshold is None else traceback.extract_stack(limit=32)
        self._held[id(record)] = Held(threading.current_thread(), stack, info.get("fd"))

    def held(self, proxied: Any) -> Held | None:
        """The checkout record of *proxied* if QUERY_TIMEOUT can act on it (the socket is known)."""
        held = self._held.get(id(proxied._connection_record))  # every checkout: see pool_core._sqla
        return held if held is not None and held.fd is not None else None

    def _ping(self, dbapi_connection: Any) -> bool:
        """The vendor's ping, bounded by VALIDATION_TIMEOUT (and CONNECT_TIMEOUT) when set.

        A ping that gets no answer in time (a silent network, a frozen
        server) has its socket shut down by the housekeeper thread, which
        makes the driver's blocked read return at once; the connection then
        counts as failed and is replaced. No timer thread per ping.
        """
        o = self.options
        limit = o.validation_timeout
        if limit is not None and o.connect_timeout is not None and o.connect_timeout < limit:
            limit = o.connect_timeout
        try:
            # Read now: some drivers (mysqlclient) refuse calls from another
            # thread while the ping is running.
            fd = self.hooks.pool_fileno(dbapi_connection)
        except Exception:
            fd = None
        if limit is None or fd is None or fd < 0:
            return bool(self.hooks.pool_ping(dbapi_connection))
        watch = _housekeeper.watch(
            limit, fd, f"pool {self.alias!r}: a pre-ping (VALIDATION_TIMEOUT={limit:g} s)"
        )
        try:
            ok = bool(self.hooks.pool_ping(dbapi_connection))
        finally:
            fired = watch.finish()
        return ok and not fired

    def _has_pending_input(self, dbapi_connection: Any, info: RecordInfo | None = None) -> bool:
        """True if the server sent something to a connection nobody was using.

        An idle pooled connection has nothing to read; one the server killed
        (pg_terminate_backend, KILL, a restart) reads a goodbye or EOF. One
        poll() with no wait, no round trip: it catches connections killed
        within PRE_PING_IDLE. A driver without a socket to look at (JDBC,
        ODBC) relies on the idle window alone. With *info* (the connection's
        record info), what the poll needs is kept there for the next time.

        The poll keeps the GIL (see _poll_now): select.poll() would release
        it, and under several threads getting it back costs a thread switch
        per checkout (a quarter of the throughput at 4 threads).
        """
        poller = None if info is None else info.get("poller")
        if poller is None:
            try:
                fd = self.hooks.pool_fileno(dbapi_connection)
            except Exception:
                return True
            if fd is None or fd < 0:
                if info is not None:
                    info["poller"] = False
                return False
            poller = _poller(fd)
            if poller is None:  # neither libc poll() nor select.poll(): select(), GIL released
                try:
                    return fd < 1024 and bool(select.select([fd], [], [], 0)[0])  # FD_SETSIZE
                except (OSError, ValueError):
                    return True
            if info is not None:
                info["poller"] = poller
        elif poller is False:
            return False  # no socket to look at
        return _poll_now(poller)

    def _on_reset(self, dbapi_connection: Any, record: ConnectionPoolEntry, state: Any) -> None:
        info = info_of(record)
        if info.get("pid") != os.getpid():
            # Returned in a forked child (e.g. the thread-local of a thread
            # that died with the fork): never talk to the parent's socket.
            _fork.neutralize(dbapi_connection, self.hooks.pool_fileno)
            info["foreign"] = True
            return
        if info.pop("clean_return", False):
            return  # give_back() already did the work
        # A checkout that was never returned (garbage-collected proxy, e.g.
        # the thread-local connection of a thread that ended).
        self._bump("connections_reclaimed")
        _leaks.warn_reclaimed(self.alias, self._held.get(id(record)))
        try:
            status = self.hooks.pool_transaction_state(dbapi_connection)
        except Exception:
            status = BROKEN
        if status == IDLE and not self.options.reset_session:
            return  # nothing to undo: back to the pool as it is
        # This runs inside a garbage collection, on whatever thread triggered
        # it (a request's, the housekeeper's): a rollback or session reset
        # here would wait on the network there, against a silent peer until
        # TCP gives up. The connection is closed instead; the server rolls
        # back what it left open.
        logger.info(
            "pool %r: closing a reclaimed connection left %s (no round trip in a garbage collection)",
            self.alias,
            "broken" if status == BROKEN else "to reset" if status == IDLE else "in a transaction",
        )
        record.invalidate()

    def _reset_on_return(
        self, dbapi_connection: Any, info: RecordInfo, status: TransactionState
    ) -> object | None:
        """Roll back what a returned connection left open, and reset its session (RESET_SESSION).

        For give_back() (_on_reset() closes such a connection instead: see
        there); *status* is the vendor's pool_transaction_state(). None
        once the connection is clean again; _BROKEN if the driver reports it
        broken (nothing done); _RECONNECT if only a new session resets it
        (flagged for _on_invalidate). A driver error propagates.
        """
        if status == BROKEN:
            return _BROKEN
        if status != IDLE:
            self._bump("rollbacks_on_return")
            dbapi_connection.rollback()
            if (
                status == IN_TRANSACTION
                and self.hooks.pool_transaction_state(dbapi_connection) == IN_TRANSACTION
            ):
                # The driver's rollback() did nothing: psycopg2 skips it in
                # autocommit, where a raw BEGIN opened the transaction.
                cursor = dbapi_connection.cursor()
                try:
                    cursor.execute("ROLLBACK")
                finally:
                    cursor.close()
                if self.hooks.pool_transaction_state(dbapi_connection) != IDLE:
                    return _BROKEN
        if self.options.reset_session:
            self._bump("session_resets")
            if not self.hooks.pool_reset_session(dbapi_connection):
                info["reset_by_reconnect"] = True
                return _RECONNECT
            info.pop(INIT_DONE, None)
        return None

    def _on_checkin(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        info = info_of(record)
        # shrink_idle() sends parked connections back with their idle time.
        info["last_used"] = info.pop("idle_since", None) or time.monotonic()
        if info.pop("slot", False) and self._slots is not None:
            self._slots.release()
        self._held.pop(id(record), None)
        # (A checkout that failed in its listeners is checked in without
        # having been counted.)
        counted = info.pop("counted_out", False)
        with self._lock:
            # Under the lock with retire()'s count: either that count still
            # includes this connection and this decrements it, or it no longer does.
            if counted:
                self._out -= 1
            retired = self.retired
            if retired and counted:
                self._retired_out -= 1
        if dbapi_connection is None or info.get("foreign"):
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("pool %r: connection returned", self.alias)
        if retired:
            record.invalidate(soft=False)

    def _on_close(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        self._bump("connections_closed")

    def _on_invalidate(self, dbapi_connection: Any, record: ConnectionPoolEntry, exception: Any) -> None:
        if info_of(record).pop("recycle_due", False):
            self._bump("connections_recycled")
            logger.info(
                "pool %r: recycled a connection older than RECYCLE=%gs (less jitter)",
                self.alias,
                self.options.recycle,
            )
            return
        if info_of(record).pop("reset_by_reconnect", False):
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
        with self._lock:
            self.retired = True
            # QueuePool forgets its checked-out connections when disposed: count
            # them here (parked ones included: draining them below counts down).
            self._retired_out = self._out
            if self._retired_out > 0:
                self.state.retired.append(self)
        self._pool.retired = True  # before dispose(): see RetirableQueuePool
        self._drain_parked()
        self._pool.dispose()

    def _queue_parked_idle_since(self, cutoff: float, now: float) -> None:
        """Send parked connections last used at *cutoff* or before back to the queue.

        They keep their idle time; parked connections are in return order, oldest first.
        """
        slots = self._slots
        if slots is None:
            return
        parked = self._parked
        while True:
            with slots._lock:
                # Looks before it reads, as FairSlots._pop_idle(): no IndexError
                # (an allocation) under the lock but in a race with a lock-free pop.
                if not parked:
                    return
                try:
                    proxied = parked[0]
                except IndexError:
                    return
                since = info_of(proxied).get("last_used", now)
                if since > cutoff:
                    return
                try:
                    parked.remove(proxied)
                except ValueError:  # just handed out
                    continue
            info_of(proxied)["idle_since"] = since
            self.return_unused(proxied)

    def keepalive(self, now: float | None = None) -> int:
        """Ping connections idle for KEEPALIVE_TIME since their last use or ping.

        Runs on housekeeper ticks; *now* (time.monotonic()) is for tests. A
        connection is taken out of the queue, with a free slot in hand, for its
        ping, and put back; one that fails is closed. The idle time
        IDLE_TIMEOUT looks at is left alone. Returns the number pinged.
        """
        every = self.options.keepalive_time
        slots = self._slots
        if every is None or self.retired or slots is None:
            return 0
        now = time.monotonic() if now is None else now
        cutoff = now - every

        def due(record: Any) -> bool:
            info = info_of(record)
            return (
                record.dbapi_connection is not None
                and max(info.get("last_used", now), info.get("last_ping", 0.0)) <= cutoff
            )

        self._queue_parked_idle_since(cutoff, now)

        def first_due(queued: Iterable[Any]) -> Any:
            return next((r for r in queued if id(r) not in seen and due(r)), None)

        p = self._pool
        pinged = 0
        seen: set[int] = set()
        while slots.try_acquire():
            try:
                record = _sqla.take_queued(p, first_due)
                if record is None:
                    break
                seen.add(id(record))
                pinged += 1
                self._bump("pings")
                try:
                    ok = self._ping(record.dbapi_connection)
                except Exception:
                    ok = False
                if ok:
                    info_of(record)["last_ping"] = now
                    _sqla.requeue(p, record)
                    continue
                try:
                    _sqla.invalidate_taken(p, record)
                finally:
                    # Counted once the connection is gone: whoever sees the
                    # count sees the pool without it.
                    self._bump("pings_failed")
            finally:
                slots.release()
        if self.retired:
            # Retired while a connection was out for its ping: it went back into
            # the disposed queue, which nothing closes any more (retire() sets
            # retired before it disposes, so one of the two closes it).
            self.close_idle()
        return pinged

    def fill(self) -> int:
        """Open idle connections until the pool holds MIN_IDLE; returns how many it opened.

        Connects in the calling thread; a connect error propagates (the
        driver's). Never exceeds the bound, and stops if the pool is closed.
        """
        p = self._pool
        target = min(self.options.min_idle, p.size()) if self._keeps_overflow else self.options.min_idle
        opened = 0
        while not self.retired and p.checkedout() + p.checkedin() < target:
            if not _sqla.open_queued(p):
                break
            opened += 1
        if self.retired:
            self.close_idle()  # retired meanwhile: see keepalive()
        return opened

    def begin_drain(self) -> None:
        """Hand out nothing more; close idle connections now, checked-out ones on return."""
        self.draining = True
        if self._slots is not None:
            self._slots.close()
        self.retire()

    def wait_drained(self, deadline: float) -> int:
        """Wait until every checked-out connection is back, or *deadline* (monotonic) passes.

        Returns how many are still checked out; those are logged and closed
        when they come back.
        """
        while self._held and time.monotonic() < deadline:
            self.reclaim_orphans()
            time.sleep(0.01)
        held = list(self._held.values())
        if held:
            logger.warning(
                "pool %r: drain() timed out with %d connection(s) still checked out (threads %s); "
                "they will be closed when returned",
                self.alias,
                len(held),
                ", ".join(repr(h.owner_name()) for h in held),
            )
        return len(held)

    def close_idle(self) -> None:
        """Close every idle connection now; the bound and the pool stay intact.

        In a live pool each is taken out of the queue with a free slot in hand,
        as shrink_idle() does: a checkout meanwhile then waits for a slot, not
        in SQLAlchemy's emptied queue for a connection that is being closed
        (nothing would wake it before TIMEOUT). With every slot in use (threads
        waiting) the rest are left to them. A retired pool hands nothing out:
        all are closed, and counted down by nobody (its dispose() forgot them).
        """
        self._drain_parked()
        if self.retired:
            _sqla.close_queued(self._pool)
            return
        slots = self._slots
        while slots is None or slots.try_acquire():
            try:
                record = _sqla.take_any_queued(self._pool)
                if record is None:
                    break
                _sqla.close_taken(self._pool, record)
            finally:
                if slots is not None:
                    slots.release()

    def shrink_idle(self, now: float | None = None) -> int:
        """Close connections idle longer than IDLE_TIMEOUT, down to POOL_SIZE (or MIN_IDLE).

        Oldest idle first; returns how many were closed. Runs on housekeeper
        ticks; *now* (a time.monotonic() value) is for tests. Never waits: a
        queued connection is only taken with a free slot in hand, so no
        checkout can end up waiting for a connection closed under it.
        """
        slots = self._slots
        limit = self.options.idle_timeout
        if not self._shrinks or self.retired or slots is None or limit is None:
            return 0
        now = time.monotonic() if now is None else now
        cutoff = now - limit
        self._queue_parked_idle_since(cutoff, now)

        def oldest_idle(queued: Iterable[Any]) -> Any:
            idle = [r for r in queued if info_of(r).get("last_used", now) <= cutoff]
            return min(idle, key=lambda r: info_of(r).get("last_used", now)) if idle else None

        p = self._pool
        closed = 0
        keep = max(self.options.pool_size, self.options.min_idle)
        while p.checkedout() + p.checkedin() > keep and slots.try_acquire():
            try:
                record = _sqla.take_queued(p, oldest_idle)
                if record is None:
                    break
                _sqla.close_taken(p, record)
                closed += 1
            finally:
                slots.release()
        if closed:
            logger.info(
                "pool %r: closed %d connection(s) idle longer than IDLE_TIMEOUT=%gs",
                self.alias,
                closed,
                limit,
            )
        return closed

    def give_back(self, proxied: Any, dbapi_connection: Any, errors_occurred: bool) -> int:
        """Return *proxied* after making sure no transaction or breakage leaks.

        Never raises: a connection that cannot be reset is discarded. Returns
        the lease it was checked out under if it was parked (for reclaim()),
        else 0.
        """
        info = info_of(proxied)
        if info.pop("query_timed_out", False):
            # Its socket was shut down mid-query (QUERY_TIMEOUT): never reuse,
            # and no ping that would replace the pool's other connections.
            proxied.invalidate()
            return 0
        try:
            status = self.hooks.pool_transaction_state(dbapi_connection)
            # The common case (idle, no RESET_SESSION) makes no call: the hot path.
            if status != IDLE or self.options.reset_session:
                unfit = self._reset_on_return(dbapi_connection, info, status)
                if unfit is _BROKEN:
                    raise ConnectionError("the driver reports the connection as broken")
                if unfit is _RECONNECT:
                    # No in-place reset for this driver: a new session is the reset.
                    proxied.invalidate()
                    return 0
        except Exception as e:
            logger.info(
                "pool %r: discarding a connection that could not be reset on return (%s)",
                self.alias,
                type(e).__name__,
            )
            proxied.invalidate(e)
            return 0
        info["clean_return"] = True
        if errors_occurred:
            info["suspect"] = True
        else:
            lease = self._park(proxied, info)
            if lease:
                return lease
        proxied.close()
        return 0

    def put_back(self, proxied: Any, dbapi_connection: Any, idle: bool = False) -> int:
        """give_back() of a connection the driver reports idle, when it would park it.

        For the mixin's one-step return (no QUERY_TIMEOUT watch, no errors):
        parks *proxied* (_park) and returns the lease it was checked out
        under (for reclaim()); else returns 0, having at most flagged it
        clean, and give_back() decides. *idle*: the caller has just read the
        driver's transaction state, and it was IDLE.
        """
        if self.options.reset_session:
            return 0
        if not idle:
            try:
                if self.hooks.pool_transaction_state(dbapi_connection) != IDLE:
                    return 0
            except Exception:
                return 0
        info = info_of(proxied._connection_record)  # see pool_core._sqla
        info["clean_return"] = True
        return self._park(proxied, info)

    def discard(self, proxied: Any) -> None:
        """Close *proxied*'s physical connection instead of returning it.

        For a connection that failed Django's health check (is_usable()):
        the pool slot is freed and the next checkout opens a new connection.
        Never raises.
        """
        logger.info("pool %r: discarding a connection that failed Django's health check", self.alias)
        try:
            proxied.invalidate()
        except Exception:
            logger.debug("pool %r: error while discarding a connection", self.alias, exc_info=True)

    def forget_after_fork(self) -> None:
        """In a forked child: make every idle inherited connection harmless."""
        self.retired = True
        parked, self._parked[:] = list(self._parked), []
        for proxied in parked:
            conn = proxied.dbapi_connection
            info_of(proxied)["foreign"] = True
            if conn is not None:
                _fork.neutralize(conn, self.hooks.pool_fileno)
            _fork.keep(proxied)  # never freed here: see _fork.keep()
        for record in _sqla.queued(self._pool):
            conn = getattr(record, "dbapi_connection", None)
            if conn is not None:
                info_of(record)["foreign"] = True
                _fork.neutralize(conn, self.hooks.pool_fileno)

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
            parked_checkouts = _count_of(state.parked_checkouts)
            counters["checkouts"] += parked_checkouts
            wait_count += parked_checkouts
            buckets[0] += parked_checkouts
            # Replaced pools' connections still checked out hold slots too.
            state.retired[:] = [r for r in state.retired if r._retired_out > 0]
            replaced = sum(r._retired_out for r in state.retired)
        parked = len(self._parked)  # idle, though checked out of the QueuePool
        checked_out = p.checkedout() - parked + replaced
        # A discarded connection's record waits in the queue without one
        # (SQLAlchemy reconnects it at its next checkout): not open.
        idle = sum(1 for record in _sqla.queued(p) if record.dbapi_connection is not None) + parked
        o = self.options
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
            **wait_stats(buckets, wait_count, wait_sum, wait_max),
        }

    def enforce_query_timeout(self, now: float) -> float:
        """Shut down the sockets of queries running past QUERY_TIMEOUT (housekeeper thread).

        Returns when to look again: the deadline of the oldest query still in
        flight, or one QUERY_TIMEOUT from *now* (a query started after now
        cannot be due earlier). The owner thread sees *query_fired* when its
        driver call returns and raises pool_core.QueryTimeout.
        """
        limit = self.options.query_timeout
        assert limit is not None
        due = now + limit
        for held in list(self._held.values()):
            since = held.query_since
            if not since or held.query_fired == since or held.fd is None:
                continue
            deadline = since + limit
            if now < deadline:
                due = min(due, deadline)
                continue

            def running(held: Held = held, since: float = since) -> bool:
                held.query_fired = since  # before reading query_since: the owner clears it, then reads this
                if held.query_since != since:
                    return False
                # Counted and logged before the shutdown wakes the owner up.
                self._bump("queries_timed_out")
                logger.warning(
                    "pool %r: a query of thread %r got no answer within QUERY_TIMEOUT=%g s; "
                    "its connection is shut down and discarded",
                    self.alias,
                    held.owner_name(),
                    limit,
                )
                return True

            _housekeeper.shutdown_if(held.fd, running)
        return due

    def housekeep(self) -> None:
        """Log new leaks, reclaim connections of ended threads (housekeeper thread)."""
        limit = self.options.leak_detection_threshold
        if limit is not None:
            _leaks.report_leaks(self.alias, self._held, limit, self._bump)
        self.reclaim_orphans()
        self.shrink_idle()
        self.keepalive()

    def _reclaim_while_waiting(self) -> None:
        """reclaim_orphans() for a checkout that waits: at most once per RECLAIM_INTERVAL per alias.

        Under contention nearly every checkout waits, and the scan (each
        holder thread's liveness, every thread's frame) costs tens of
        microseconds: one waiter of a burst runs it, and each waiter runs it
        again every WAIT_SLICE of its wait, so a dead thread's connection
        still comes back within about a second.
        """
        now = time.monotonic()
        state = self.state
        if now < state.next_reclaim:
            return
        state.next_reclaim = now + RECLAIM_INTERVAL
        self.reclaim_orphans()

    def reclaim_orphans(self) -> None:
        """Return connections whose owner thread has ended without returning them.

        A thread that dies holding its thread-local Django connection leaves
        it to the garbage collector, which may not run for a long time: the
        pool would stay short of a connection. Runs when a checkout has to
        wait (so a dead thread never starves the pool) and on housekeeper
        ticks. Collecting garbage makes SQLAlchemy's finaliser return the
        connection (rolled back); one that is still referenced is left alone.
        Orphans count as seen only once a full collection ran after their
        owner ended: if another thread's collection was under way, the next
        call tries again (see pool_core._leaks.collect_garbage).
        """
        _leaks.reclaim_orphans(self.alias, self._held)

    def report_idle_executor_holders(self) -> None:
        """Warn (once per checkout) about connections held by an idle thread pool executor thread.

        ``sync_to_async(thread_sensitive=False)`` (and ``run_in_executor``)
        run the ORM in a thread of a shared executor; Django closes
        connections at request end only in the request's own thread, so
        that thread keeps its connection checked out between tasks, pinning
        a slot. Such a thread is alive, so it is not reclaimed: it is named
        in a WARNING once it has been seen idle with its checkout on two
        looks at least _leaks.IDLE_HOLD_SECONDS apart (an asgiref thread-sensitive
        thread idles a moment between its view and request_finished). Runs
        with reclaim_orphans (a checkout that waits, housekeeper ticks),
        never on the checkout path.
        """
        _leaks.report_idle_executor_holders(self.alias, self._held)
