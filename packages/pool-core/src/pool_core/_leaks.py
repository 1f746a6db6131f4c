"""Leak and orphan tracking: who holds each checkout, and the warnings about holders that never give it back.

AliasPool keeps a Held record per checkout (id(record) -> Held, shared by
an alias's pools); the functions here read those records on housekeeper
ticks and while a checkout waits, never on the checkout path.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

logger = logging.getLogger("pool_core")


class Held:
    """One checkout in progress: when, by which thread, from where.

    With QUERY_TIMEOUT, the owner thread sets *query_since* (monotonic) while
    a query is in flight and 0.0 otherwise; the housekeeper sets
    *query_fired* to the *query_since* of a query it shut down (see
    pool_core.pool.AliasPool.enforce_query_timeout and pool_core.deadline).
    """

    # Class defaults for the flags the housekeeper sets later: a checkout
    # (every request) sets only the four attributes it knows.
    reported = False
    dead_owner_seen = False
    unreclaimable_reported = False
    idle_reported = False
    idle_seen = 0.0
    query_since = 0.0
    query_fired = 0.0

    def __init__(
        self,
        thread: threading.Thread,
        stack: traceback.StackSummary | None,
        fd: int | None = None,
        since: float | None = None,
    ) -> None:
        self.since = time.monotonic() if since is None else since
        self.thread = weakref.ref(thread)
        self.stack = stack
        self.fd = fd

    def owner_alive(self) -> bool:
        thread = self.thread()
        return thread is not None and thread.is_alive()

    def owner_name(self) -> str:
        thread = self.thread()
        return thread.name if thread is not None else "?"


def idle_in_executor(frame: FrameType) -> bool:
    """Whether a thread's innermost Python frame is a thread pool executor waiting for work."""
    code = frame.f_code
    return code.co_name == "_worker" and code.co_filename.endswith(_EXECUTOR_FILE)


_EXECUTOR_FILE = os.path.join("concurrent", "futures", "thread.py")

#: An executor thread idle this long with a checkout is reported as pinning a slot.
IDLE_HOLD_SECONDS = 0.9


def format_stack(stack: traceback.StackSummary | None) -> str:
    """The checkout stack, without the pool's and SQLAlchemy's own frames."""
    if not stack:
        return "  (stack not recorded: set LEAK_DETECTION_THRESHOLD to record it)\n"
    frames = list(stack)
    internal = (f"{os.sep}sqlalchemy{os.sep}", f"{os.sep}pool_core{os.sep}")
    while frames and any(part in frames[-1].filename for part in internal):
        frames.pop()
    return "".join(traceback.format_list(frames))


def collect_garbage() -> bool:
    """Run a full garbage collection here; False if it could not run.

    CPython runs one collection at a time: gc.collect() returns at once,
    having collected nothing, while another thread's collection is under way
    (one releases the GIL in finalisers, e.g. SQLAlchemy's returning a
    connection with a ROLLBACK). That collection may have started before the
    caller's garbage became garbage. True only if a full collection started
    in this thread during the call, and so ended before it returned.
    """
    me = threading.get_ident()
    started: list[bool] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info.get("generation") == 2 and threading.get_ident() == me:
            started.append(True)

    gc.callbacks.append(note)
    try:
        gc.collect()
    finally:
        try:
            gc.callbacks.remove(note)
        except ValueError:  # someone cleared gc.callbacks meanwhile
            pass
    return bool(started)


def report_leaks(alias: str, held_by: dict[int, Held], limit: float, count: Callable[[str], None]) -> None:
    """Warn once about each checkout held LEAK_DETECTION_THRESHOLD (*limit*) seconds or longer.

    *count* is AliasPool._bump: each new leak counts as leaks_detected before it is logged.
    """
    now = time.monotonic()
    for held in list(held_by.values()):
        if not held.reported and now - held.since >= limit:
            held.reported = True
            count("leaks_detected")
            logger.warning(
                "pool %r: possible connection leak: a connection has been checked out for "
                "%.1f s (LEAK_DETECTION_THRESHOLD=%gs) by thread %r; checked out at:\n%s",
                alias,
                now - held.since,
                limit,
                held.owner_name(),
                format_stack(held.stack),
            )


def warn_reclaimed(alias: str, held: Held | None) -> None:
    """The warning about a checkout the garbage collector returned (its holder never did)."""
    logger.warning(
        "pool %r: reclaimed a connection that was garbage-collected without being "
        "returned (checked out by thread %r); checked out at:\n%s",
        alias,
        held.owner_name() if held else "?",
        format_stack(held.stack if held else None),
    )


def reclaim_orphans(alias: str, held_by: dict[int, Held]) -> None:
    """AliasPool.reclaim_orphans() on the checkouts of *held_by*."""
    report_idle_executor_holders(alias, held_by)
    orphans = [h for h in list(held_by.values()) if not h.dead_owner_seen and not h.owner_alive()]
    if not orphans:
        return
    if not collect_garbage():
        return
    for held in orphans:
        held.dead_owner_seen = True
    for held in list(held_by.values()):
        if held.dead_owner_seen and not held.unreclaimable_reported:
            held.unreclaimable_reported = True
            logger.warning(
                "pool %r: thread %r ended without returning its connection, which is still "
                "referenced elsewhere (shared with another thread?), so it was not reclaimed; "
                "checked out at:\n%s",
                alias,
                held.owner_name(),
                format_stack(held.stack),
            )


def report_idle_executor_holders(alias: str, held_by: dict[int, Held]) -> None:
    """AliasPool.report_idle_executor_holders() on the checkouts of *held_by*."""
    candidates = [h for h in list(held_by.values()) if not h.idle_reported]
    if not candidates:
        return
    frames = sys._current_frames()
    now = time.monotonic()
    for held in candidates:
        thread = held.thread()
        frame = frames.get(thread.ident) if thread is not None and thread.ident is not None else None
        if frame is None or not idle_in_executor(frame):
            held.idle_seen = 0.0
            continue
        if not held.idle_seen:
            held.idle_seen = now
        if now - held.idle_seen < IDLE_HOLD_SECONDS:
            continue
        held.idle_reported = True
        logger.warning(
            "pool %r: thread %r keeps a connection checked out while it waits for work in a thread "
            "pool executor (sync_to_async(thread_sensitive=False), run_in_executor): Django returns "
            "connections at request end only in the request's own thread, so this pool slot stays "
            "pinned until that thread calls connection.close() or close_old_connections(); "
            "checked out at:\n%s",
            alias,
            held.owner_name(),
            format_stack(held.stack),
        )
