"""The per-process registry: alias -> AliasPool, created lazily, reset after fork."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from . import _housekeeper
from .options import parse_options
from .pool import AliasPool, AliasState

logger = logging.getLogger("pool_core")

_pools: dict[str, AliasPool] = {}
#: The AliasState of each alias whose pool dispose() removed: the next pool of
#: the alias takes it over (its bound, its checkouts still out, its counters).
_disposed: dict[str, AliasState] = {}
_lock = threading.RLock()
_tls = threading.local()


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def pool_key(*parts: Any) -> Any:
    """A hashable fingerprint of everything a physical connection depends on."""
    return _freeze(parts)


def current_wrapper() -> Any:
    """The DatabaseWrapper whose checkout is opening a connection in this thread."""
    return getattr(_tls, "wrapper", None)


def get_pool(
    wrapper: Any,
    key: Any,
    connect: Callable[[], Any],
    description: str,
) -> AliasPool:
    """Return the live pool of *wrapper*'s alias for *key*, creating it if needed.

    A different key (settings changed, e.g. the test runner switched NAME)
    retires the old pool: its idle connections close now, checked-out ones
    when they come back. The new pool shares the old one's AliasState: until
    they come back, those connections hold slots of the alias's one bound,
    and the alias's counters go on from where they were.
    """
    alias = wrapper.alias
    pool = _pools.get(alias)
    if pool is not None and pool.key == key and pool.pid == os.getpid():
        return pool
    with _lock:
        pool = _pools.get(alias)
        if pool is not None and pool.key == key and pool.pid == os.getpid():
            return pool
        options = parse_options(alias, wrapper.settings_dict.get("POOL_OPTIONS"))
        # (AliasPool takes it only if it is this process's.)
        state = pool.state if pool is not None else _disposed.pop(alias, None)
        new = AliasPool(alias, options, type(wrapper), connect, key, description, state)
        if pool is not None:
            if pool.pid == os.getpid():
                logger.info("pool %r: settings changed, replacing the pool", alias)
                pool.retire()
            else:
                pool.forget_after_fork()
        _pools[alias] = new
        if _housekeeper.needed(options):
            _housekeeper.ensure_running()
        logger.info(
            "pool %r: created for %s (POOL_SIZE=%d, MAX_OVERFLOW=%d)",
            alias,
            description,
            options.pool_size,
            options.max_overflow,
        )
        return new


def get_existing(alias: str) -> AliasPool | None:
    pool = _pools.get(alias)
    if pool is None or pool.pid != os.getpid():
        return None
    return pool


def all_pools() -> dict[str, AliasPool]:
    pid = os.getpid()
    return {alias: p for alias, p in list(_pools.items()) if p.pid == pid}


def close_idle(alias: str | None = None) -> None:
    """Close idle pooled connections (all aliases, or one), keeping the pools."""
    for name, pool in all_pools().items():
        if alias is None or alias == name:
            pool.close_idle()


def dispose(alias: str | None = None) -> None:
    """Retire the pools (all aliases, or one); the next checkout makes new ones.

    Connections still checked out are closed when they are returned. Until
    then they count towards the alias's bound, and the alias's counters go
    on, as across a settings change (not after drain(): the next pool
    starts afresh).
    """
    with _lock:
        for name in list(_pools):
            if alias is None or alias == name:
                pool = _pools.pop(name)
                if pool.pid == os.getpid():
                    pool.retire()
                    if not pool.draining:
                        _disposed[name] = pool.state
                else:
                    pool.forget_after_fork()


def warm(alias: str | None = None) -> int:
    """Open MIN_IDLE connections for the pooled aliases (all, or one) now.

    For start-up in the process that will use them: ``AppConfig.ready()`` of
    a process that does not fork, gunicorn ``post_fork``, Celery
    ``worker_process_init``; never in a parent that forks afterwards (its
    connections would be of no use to the children). An alias whose database
    cannot be reached raises OperationalError after INIT_FAIL_TIMEOUT seconds
    of retrying, or, with INIT_FAIL_TIMEOUT=None, is logged at WARNING and
    left to connect on demand. Returns the number of connections opened.
    """
    from django.db import connections
    from django.db.utils import OperationalError

    from .mixin import PoolingMixin

    names = [alias] if alias is not None else list(connections)
    opened = 0
    for name in names:
        wrapper = connections[name]
        if not isinstance(wrapper, PoolingMixin):
            if alias is not None:
                raise ValueError(f"pool_core.warm(): DATABASES[{name!r}] does not use a pooled ENGINE.")
            continue
        options = parse_options(name, wrapper.settings_dict.get("POOL_OPTIONS"))
        limit = options.init_fail_timeout
        deadline = time.monotonic() + (limit or 0.0)
        delay = 0.05
        while True:
            try:
                opened += _warm_one(wrapper)
                break
            except OperationalError as e:
                if limit is None:
                    logger.warning(
                        "pool %r: warm() could not connect; the pool will connect on demand: %s", name, e
                    )
                    break
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
    return opened


def _warm_one(wrapper: Any) -> int:
    """Create *wrapper*'s pool if needed (one checkout), then fill it to MIN_IDLE."""
    opened = 0
    pool = get_existing(wrapper.alias)
    if pool is None and wrapper.connection is None:
        wrapper.ensure_connection()
        wrapper.close()
        pool = get_existing(wrapper.alias)
        opened = 1 if pool is not None else 0
    if pool is None:
        return opened
    _tls.wrapper = wrapper
    try:
        return opened + pool.fill()
    except wrapper.Database.Error as e:
        raise wrapper._pool_connect_error(e, pool) from e
    finally:
        _tls.wrapper = None


def drain(alias: str | None = None, timeout: float = 30.0) -> int:
    """Close the pools (all aliases, or one) for a graceful shutdown.

    Checkouts fail at once with PoolError from now on (threads waiting for a
    connection too); idle connections close now; then this waits up to
    *timeout* seconds for checked-out connections to come back, closing each
    as it does. Returns how many were still checked out at the deadline
    (0: all closed); those close when they are returned. The pools stay in
    place, closed: dispose() removes them so the next checkout opens new ones.
    """
    pools = [p for name, p in all_pools().items() if alias is None or alias == name]
    for pool in pools:
        pool.begin_drain()
    deadline = time.monotonic() + timeout
    return sum(pool.wait_drained(deadline) for pool in pools)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.RLock()
    _housekeeper.after_fork_in_child()
    for pool in list(_pools.values()):
        pool.forget_after_fork()
    _pools.clear()
    _disposed.clear()
    # The forking thread's own Django connections survive the fork; detach
    # them so that the child opens its own.
    try:
        from django.db import connections

        wrappers = connections.all(initialized_only=True)
    except Exception:  # Django not configured in this process
        return
    for wrapper in wrappers:
        detach = getattr(wrapper, "_pool_detach_after_fork", None)
        if detach is not None:
            detach()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
