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
from typing import Any


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


def requeue(pool: Any, record: Any) -> None:
    """Put an idle record (taken with take_queued(), or opened by open_queued()) into *pool*'s queue."""
    pool._pool.put(record, False)


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
    """Open one connection into *pool*'s queue; False if the pool is full. A connect error propagates."""
    if not pool._inc_overflow():
        return False
    try:
        record = pool._create_connection()
    except BaseException:
        pool._dec_overflow()
        raise
    requeue(pool, record)
    return True
