"""A daemon thread per process, started only when a pool needs it.

It runs when an alias sets LEAK_DETECTION_THRESHOLD or KEEPALIVE_TIME, or settings.POOL_STATS_DIR
is set, or once a pool holds more than POOL_SIZE connections that IDLE_TIMEOUT
may close (so a process that forks, e.g. gunicorn --preload, has no extra
thread otherwise). Each tick it:
- logs a WARNING with the checkout stack for connections held longer than
  LEAK_DETECTION_THRESHOLD (once per checkout);
- reclaims connections whose owner thread has ended (see
  AliasPool.reclaim_orphans; checkouts that have to wait do it too);
- closes connections beyond POOL_SIZE idle longer than IDLE_TIMEOUT
  (AliasPool.shrink_idle);
- pings connections idle for KEEPALIVE_TIME (AliasPool.keepalive);
- publishes this process's stats to ``settings.POOL_STATS_DIR``, for
  ``manage.py pool_status`` and the Prometheus collector in other processes.

It also enforces deadlines, without a timer per operation:
- QUERY_TIMEOUT (started with the pool): it wakes when the oldest query in
  flight reaches its deadline (a query started later has a later one), and
  shuts down the socket of a query running past it (AliasPool.enforce_query_timeout);
- pre-pings bounded by VALIDATION_TIMEOUT register a Watch (started on the
  first one); a ping still running at its deadline has its socket shut down.
Without ticks to run it just waits for the next deadline.

After fork() the child starts its own when it creates a pool that needs it
(or pings).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("pool_core")

#: Seconds between ticks when no leak threshold asks for a shorter one.
INTERVAL = 1.0

_thread: threading.Thread | None = None
_pid = 0
_start_lock = threading.Lock()
#: Ticks never overlap: the thread's and one asked for directly (tests, a shell).
_tick_lock = threading.Lock()
_wake = threading.Event()
_tick_requested = False
#: The last error publish() failed with (logged once), None once it works.
_publish_error: str | None = None
#: id(watch) -> Watch: operations in flight with a deadline (pre-pings).
_watches: dict[int, Watch] = {}


class Watch:
    """One operation in flight on socket *fd* that must end by *deadline*.

    The owner calls finish() when it ends; True means the deadline fired
    (the socket was shut down, or the operation ended just as it fired).
    """

    __slots__ = ("deadline", "fd", "done", "fired", "what", "timer")

    def __init__(self, seconds: float, fd: int, what: str) -> None:
        self.deadline = time.monotonic() + seconds
        self.fd = fd
        self.done = False
        self.fired = False
        self.what = what
        self.timer: threading.Timer | None = None

    def finish(self) -> bool:
        self.done = True  # before reading fired: see _fire()
        _watches.pop(id(self), None)
        if self.timer is not None:
            self.timer.cancel()
        return self.fired


def watch(seconds: float, fd: int, what: str) -> Watch:
    """Shut down socket *fd* if the caller has not called finish() within *seconds*."""
    w = Watch(seconds, fd, what)
    if _thread is not None and threading.current_thread() is _thread:
        # The housekeeper's own operation (a KEEPALIVE_TIME ping): the thread
        # that fires watches is the one waiting, so a timer fires this one.
        w.timer = threading.Timer(seconds, _fire, (w,))
        w.timer.daemon = True
        w.timer.start()
        return w
    _watches[id(w)] = w
    ensure_running()
    _wake.set()  # the thread may be sleeping past this deadline
    return w


def shutdown_if(fd: int, still_running: Callable[[], bool]) -> bool:
    """Shut down socket *fd* (both directions) if *still_running()* after pinning it.

    The descriptor is duplicated first, then *still_running* is checked: if it
    holds, the operation was in flight (its connection open, *fd* its socket)
    the whole time, so the duplicate refers to that socket even if the owner
    closes it and the number is reused right after. Returns True if shut down.
    """
    try:
        dup = os.dup(fd)
    except OSError:
        return False
    try:
        if not still_running():
            return False
        sock = socket.socket(fileno=dup)
        dup = -1
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()  # the duplicate only
        return True
    finally:
        if dup >= 0:
            os.close(dup)


def _fire(w: Watch) -> None:
    _watches.pop(id(w), None)

    def running() -> bool:
        w.fired = True  # before reading done: the owner sets done, then reads fired
        return not w.done

    if shutdown_if(w.fd, running):
        logger.info("pool_core: %s got no answer in time; its socket was shut down", w.what)


def ensure_running() -> None:
    """Start the thread, or wake it: a new pool or a grown one may need ticks it sleeps through."""
    global _thread, _pid
    if _thread is not None and _pid == os.getpid() and _thread.is_alive():
        _wake.set()  # it may sleep without a deadline (nothing needed ticks when it looked)
        return
    with _start_lock:
        if _thread is not None and _pid == os.getpid() and _thread.is_alive():
            _wake.set()
            return
        _pid = os.getpid()
        _thread = threading.Thread(target=_run, name="pool_core-housekeeper", daemon=True)
        _thread.start()


def after_fork_in_child() -> None:
    """Fresh locks: the parent's may have been held by a thread that is gone."""
    global _start_lock, _tick_lock, _wake, _thread
    _start_lock = threading.Lock()
    _tick_lock = threading.Lock()
    _wake = threading.Event()
    _thread = None
    _watches.clear()  # the parent's pings, on the parent's sockets


def wake() -> None:
    """Run a tick now (tests, and pool changes that shorten the interval)."""
    global _tick_requested
    _tick_requested = True
    _wake.set()


def _interval(pools: dict[str, Any]) -> float:
    interval = INTERVAL
    for pool in pools.values():
        limit = pool.options.leak_detection_threshold
        if limit is not None:
            interval = min(interval, max(limit / 2.0, 0.05))
        for every in (pool.options.idle_timeout, pool.options.keepalive_time):
            if every:
                interval = min(interval, max(every / 2.0, 0.05))
    return interval


def _run() -> None:
    global _tick_requested
    from . import registry

    me = os.getpid()
    next_tick = 0.0
    while os.getpid() == me:
        wake_event = _wake
        wake_event.clear()  # before looking: a watch added from now on sets it again
        wait: float | None = None
        try:
            pools = registry.all_pools()
            now = time.monotonic()
            if _tick_requested or any(_ticks_needed(p.options) or p._shrinks for p in pools.values()):
                if _tick_requested or now >= next_tick:
                    _tick_requested = False
                    try:
                        tick()
                    except Exception:  # never die: log and go on
                        logger.exception("pool_core housekeeper: tick failed")
                    now = time.monotonic()
                    next_tick = now + _interval(pools)
                wait = next_tick - now
            for pool in pools.values():
                if pool.options.query_timeout is not None:
                    due = pool.enforce_query_timeout(now)
                    wait = due - now if wait is None else min(wait, due - now)
            for w in list(_watches.values()):
                if w.done:
                    _watches.pop(id(w), None)
                elif now >= w.deadline:
                    _fire(w)
                else:
                    wait = w.deadline - now if wait is None else min(wait, w.deadline - now)
        except Exception:  # never die: log and go on
            logger.exception("pool_core housekeeper: deadline check failed")
            wait = INTERVAL
        wake_event.wait(None if wait is None else max(wait, 0.001))


def needed(options: Any) -> bool:
    """True if a pool with *options* needs the thread from its creation on."""
    return options.query_timeout is not None or _ticks_needed(options)


def _ticks_needed(options: Any) -> bool:
    return (
        options.leak_detection_threshold is not None
        or options.keepalive_time is not None
        or stats_dir() is not None
    )


def tick() -> None:
    with _tick_lock:
        _tick()


def _tick() -> None:
    from . import registry

    pools = registry.all_pools()
    for pool in pools.values():
        try:
            pool.housekeep()
        except Exception:  # the other aliases' housekeeping still runs
            logger.exception("pool %r: housekeeping failed", pool.alias)
    global _publish_error
    try:
        publish(pools)
    except OSError as e:  # every tick: said once, not once a second
        error = f"{type(e).__name__}: {e}"
        if error != _publish_error:
            _publish_error = error
            logger.warning(
                "pool_core: cannot publish pool stats to POOL_STATS_DIR (%s); retrying every tick, "
                "logged again only if the error changes",
                error,
            )
    else:
        _publish_error = None


# -- stats publishing ----------------------------------------------------------


def stats_dir() -> str | None:
    try:
        from django.conf import settings

        value = getattr(settings, "POOL_STATS_DIR", None)
    except Exception:  # settings not configured
        return None
    return os.fspath(value) if value else None


def stats_file(directory: str, pid: int | None = None) -> str:
    return os.path.join(directory, f"{socket.gethostname()}-{pid or os.getpid()}.json")


def publish(pools: dict[str, Any]) -> None:
    directory = stats_dir()
    if directory is None or not pools:
        return
    os.makedirs(directory, exist_ok=True)
    payload = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "time": time.time(),
        "pools": {alias: pool.stats() for alias, pool in pools.items()},
    }
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
        os.replace(tmp, stats_file(directory))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_published(directory: str) -> list[dict[str, Any]]:
    """Stats published by live processes on this host, oldest pid first.

    Files of processes that are gone are removed.
    """
    out = []
    host = socket.gethostname()
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path) as f:
                payload = json.load(f)
        except (OSError, ValueError):
            continue
        if payload.get("host") == host and not _alive(int(payload.get("pid", 0))):
            try:
                os.unlink(path)
            except OSError:
                pass
            continue
        out.append(payload)
    out.sort(key=lambda p: p.get("pid", 0))
    return out
