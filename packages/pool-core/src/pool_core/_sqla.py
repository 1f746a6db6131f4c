"""The one place that reads SQLAlchemy's pool internals.

pool_core pools through ``sqlalchemy.pool.QueuePool`` and needs a few of its
private parts: the idle queue (``QueuePool._pool``, a ``sqlalchemy.util.queue.Queue``
with ``mutex`` and ``queue``), the overflow counter (``_overflow``,
``_inc_overflow()``, ``_dec_overflow()``, ``_create_connection()``), a proxied
connection's record and pool (``_ConnectionFairy._connection_record``,
``._pool``) and the invalidation times (``QueuePool._invalidate_time``,
``_ConnectionRecord._soft_invalidate_time``, ``.starttime``). Each is read
through a small function here, except on AliasPool's checkout/return hot
path, where a call would cost time: _unpark (the proxied connection's pool
and record, the invalidation times), _park (the overflow counter, the
record) and held() (the record) read them directly, with a comment naming
this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, TypedDict

from sqlalchemy.pool import QueuePool
from sqlalchemy.util.queue import Full

#: RecordInfo key of the pool_session_signature() Django's set-up last ran under.
INIT_DONE: Final = "django_init"


class RecordInfo(TypedDict, total=False):
    """What pool_core keeps in a physical connection's SQLAlchemy ``record.info``.

    One dict per physical connection, for its whole life (a proxied
    connection's ``.info`` is its record's). Read and written through
    :func:`info_of`, so the type checker knows every key and its type.
    """

    #: pool_session_signature() Django's init_connection_state() last ran under (INIT_DONE).
    django_init: tuple[Any, ...]
    #: Process that opened it: returned in another (a forked child), it is never used.
    pid: int
    #: Set in a forked child: the parent's connection, neutralised, never talked to.
    foreign: bool
    #: Its socket (the vendor's pool_fileno()), for the idle poll and QUERY_TIMEOUT.
    fd: int | None
    #: What the idle poll polls its socket with (pool._poller(): a libc pollfd, or a
    #: select.poll()), made on first use; False when the driver shows no socket.
    poller: Any
    #: time.monotonic() of its last return to the pool (or of its creation).
    last_used: float
    #: time.monotonic() of its last KEEPALIVE_TIME ping.
    last_ping: float
    #: Sent back to the queue by shrink_idle()/keepalive(): the idle time it keeps.
    idle_since: float | None
    #: time.monotonic() after which it is replaced (RECYCLE with jitter).
    recycle_at: float
    #: Being closed because RECYCLE passed (for the log line and the counter).
    recycle_due: bool
    #: Holds one of the alias's FairSlots slots, released on checkin.
    slot: bool
    #: Returned clean by give_back() (nothing left for the reset listener to do).
    clean_return: bool
    #: Returned after errors: pinged before it is handed out again.
    suspect: bool
    #: RESET_SESSION on a driver without an in-place reset: closed for a new session.
    reset_by_reconnect: bool
    #: A query on it was cut off by QUERY_TIMEOUT: never reused.
    query_timed_out: bool
    #: Checked out of the QueuePool by a checkout whose listeners completed (AliasPool._out).
    counted_out: bool
    #: Number of its last hand-out (pool._leases): AliasPool.reclaim() knows by it
    #: that nobody had the connection since a wrapper parked it.
    lease: int


def info_of(holder: Any) -> RecordInfo:
    """The RecordInfo of a record or proxied connection (its ``.info``, typed)."""
    info: RecordInfo = holder.info  # no cast() call: this runs on every checkout and return
    return info


def record_of(proxied: Any) -> Any:
    """The ``_ConnectionRecord`` behind a proxied (checked-out) connection; None once closed."""
    return proxied._connection_record


def queued(pool: Any) -> list[Any]:
    """A snapshot of the idle records in *pool*'s queue (none if it has no queue)."""
    return list(getattr(getattr(pool, "_pool", None), "queue", ()))


def take_queued(pool: Any, choose: Callable[[Iterable[Any]], Any]) -> Any:
    """Remove from *pool*'s queue, and return, the record *choose* picks from the queued ones (or None).

    *choose* runs under the queue's lock: nobody checks a record out meanwhile.
    """
    queue = pool._pool
    with queue.mutex:
        record = choose(queue.queue)
        if record is not None:
            queue.queue.remove(record)
    return record


def take_any_queued(pool: Any) -> Any:
    """Remove and return one idle record from *pool*'s queue; None if it is empty. Never waits."""
    try:
        return pool._pool.get(False)
    except Exception:
        return None


def requeue(pool: Any, record: Any) -> bool:
    """Put an idle record (taken with take_queued(), or opened by open_queued()) into *pool*'s queue.

    The queue holds POOL_SIZE records; returns that meanwhile (an overflow
    connection closed on return goes through the queue too) may have filled
    it: the record is then closed, as SQLAlchemy's own checkin does, and False
    returned. Dropped while still counted, it would shrink the pool for good.
    """
    try:
        pool._pool.put(record, False)
    except Full:
        close_taken(pool, record)
        return False
    return True


def close_taken(pool: Any, record: Any) -> None:
    """Close a record taken out of *pool*'s queue; it no longer counts towards the pool's size."""
    try:
        record.close()
    finally:
        pool._dec_overflow()


def invalidate_taken(pool: Any, record: Any) -> None:
    """Invalidate a record taken out of *pool*'s queue; it no longer counts towards the pool's size."""
    try:
        record.invalidate()
    finally:
        pool._dec_overflow()


def open_queued(pool: Any) -> bool:
    """Open one connection into *pool*'s queue; False if the pool or its queue is full. A connect error propagates."""
    if not pool._inc_overflow():
        return False
    try:
        record = pool._create_connection()
    except BaseException:
        pool._dec_overflow()
        raise
    return requeue(pool, record)


class RetirableQueuePool(QueuePool):
    """A QueuePool that closes what is returned into it once it is retired.

    SQLAlchemy runs the checkin listeners, then puts the record into the queue.
    A retire() (dispose(), drain(), a settings change) in between disposes the
    queue before the put: the connection would then sit in the disposed queue,
    open, for the rest of the process. retire() sets *retired* before it
    disposes, and a return looks at it after its put, so of the two, one
    closes it.
    """

    #: SQLAlchemy's logger names, as for QueuePool itself: its "sqlalchemy"
    #: logger's level (WARN unless configured) and ECHO apply unchanged.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.QueuePool"

    retired = False

    def _do_return_conn(self, record: Any) -> None:
        super()._do_return_conn(record)
        if self.retired:
            close_queued(self)


def close_queued(pool: Any) -> None:
    """Close every record in *pool*'s queue (a retired pool's: none counts any more)."""
    while (record := take_any_queued(pool)) is not None:
        record.close()
