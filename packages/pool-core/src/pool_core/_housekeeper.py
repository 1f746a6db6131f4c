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

After fork() the child starts its own when it creates a pool that needs it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from typing import Any

logger = logging.getLogger("pool_core")

#: Seconds between ticks when no leak threshold asks for a shorter one.
INTERVAL = 1.0

_thread: threading.Thread | None = None
_pid = 0
_start_lock = threading.Lock()
_wake = threading.Event()


def ensure_running() -> None:
    global _thread, _pid
    if _thread is not None and _pid == os.getpid() and _thread.is_alive():
        return
    with _start_lock:
        if _thread is not None and _pid == os.getpid() and _thread.is_alive():
            return
        _pid = os.getpid()
        _thread = threading.Thread(target=_run, name="pool_core-housekeeper", daemon=True)
        _thread.start()


def after_fork_in_child() -> None:
    """Fresh locks: the parent's may have been held by a thread that is gone."""
    global _start_lock, _wake, _thread
    _start_lock = threading.Lock()
    _wake = threading.Event()
    _thread = None


def wake() -> None:
    """Run a tick now (tests, and pool changes that shorten the interval)."""
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
    from . import registry

    me = os.getpid()
    while os.getpid() == me:
        try:
            tick()
        except Exception:  # never die: log and go on
            logger.exception("pool_core housekeeper: tick failed")
        _wake.wait(_interval(registry.all_pools()))
        _wake.clear()


def needed(options: Any) -> bool:
    return (
        options.leak_detection_threshold is not None
        or options.keepalive_time is not None
        or stats_dir() is not None
    )


def tick() -> None:
    from . import registry

    pools = registry.all_pools()
    for pool in pools.values():
        pool.housekeep()
    publish(pools)


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
