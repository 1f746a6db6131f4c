"""Fair hand-off of an alias's slots: first come, first served, and returned connections go to the oldest waiter."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

#: What FairSlots.acquire() returns past MAX_WAITING, and once the pool drains.
SHED, CLOSED = object(), object()

#: Seconds between checks for reclaimable connections while a checkout waits.
WAIT_SLICE = 1.0


class Grant:
    """A waiter's wake-up call, on a bare lock (an Event's Condition costs several
    times more per hand-off, and under contention nearly every checkout waits).

    *conn* is what it was granted (True: a bare slot). set() is called once,
    by whoever pops the waiter from the queue.
    """

    __slots__ = ("_lock", "conn")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.conn: Any = True

    def set(self) -> None:
        self._lock.release()

    def is_set(self) -> bool:
        return not self._lock.locked()

    def wait(self, timeout: float) -> bool:
        if self._lock.acquire(True, timeout):
            self._lock.release()  # is_set() stays true
            return True
        return False


class FairSlots:
    """A first-come, first-served counting semaphore.

    Nothing that may allocate a garbage-collected object runs under its
    lock where it can be helped (see acquire()): a collection runs
    SQLAlchemy's finalizers, which can come back here on the same thread; the
    lock is re-entrant for what cannot be helped.

    SQLAlchemy's queue lets a thread that just returned a connection take it
    again ahead of threads already waiting, which can starve a waiter into a
    timeout while the pool is healthy. Checkouts take a slot here first, in
    arrival order; a released slot is handed straight to the oldest waiter,
    and so is a clean returned connection, slot included (see park()),
    instead of going through SQLAlchemy's checkin and checkout again.
    """

    def __init__(self, slots: int, idle: list[Any] | None = None) -> None:
        self._slots = slots
        self._free = slots
        # Re-entrant: a garbage collection that starts under the lock (at an
        # allocation: see acquire() and _pop_idle()) runs SQLAlchemy's finalizer
        # of a garbage-collected checkout, which comes back here through
        # release() or park() on the same thread. Each step under the lock reads
        # the state afresh after anything that may allocate, so a release or park
        # that runs there is as if it ran just before.
        self._lock = threading.RLock()
        self._waiters: deque[Grant] = deque()
        #: AliasPool's parked connections (they keep their slot); see park().
        self._idle: list[Any] = [] if idle is None else idle
        self._closed = False

    def acquire(
        self, timeout: float, while_waiting: Callable[[], None] | None = None, max_waiting: int = 0
    ) -> Any:
        """True for a free slot, a parked connection (slot included), or False on timeout.

        Waits up to *timeout* seconds in arrival order. *while_waiting* runs
        once before waiting and then about every second of the wait, without
        losing this waiter's place in the queue. SHED instead of waiting
        when *max_waiting* (if not 0) threads already wait; CLOSED once
        close() was called.
        """
        granted: Grant | None = None
        while True:
            with self._lock:
                if self._closed:
                    return CLOSED
                conn = self._pop_idle()
                if conn is not None:
                    return conn
                if self._free > 0 and not self._waiters:
                    self._free -= 1
                    return True
                if max_waiting and len(self._waiters) >= max_waiting:
                    return SHED
                if granted is not None:
                    self._waiters.append(granted)
                    # park() appends without the lock, then looks for waiters:
                    # a connection it parked since the look above (before this
                    # waiter was in line to be seen) is taken now.
                    conn = self._pop_idle()
                    if conn is None:
                        break
                    self._waiters.remove(granted)
                    return conn
            # Never allocate an object under the lock: the garbage collection an
            # allocation may start runs SQLAlchemy's finalizers, which return a
            # garbage-collected checkout (a dead thread's) through release() or
            # park(), on this thread: with the lock held, a deadlock (CI saw it).
            # So the grant is made outside, and the state checked again.
            granted = Grant()
        deadline = time.monotonic() + timeout
        try:
            while True:
                if while_waiting is not None:
                    while_waiting()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if granted.wait(min(remaining, WAIT_SLICE)):
                    return granted.conn
        except BaseException:
            # Whatever interrupted the wait (an error in *while_waiting*, an
            # asynchronous exception), this waiter leaves the queue, and what
            # it may have been handed meanwhile goes to the next one: a slot
            # or a connection granted to a waiter that is gone would be lost.
            self._abandon(granted)
            raise
        with self._lock:
            if granted.is_set():  # handed over just as the wait timed out
                return granted.conn
            self._waiters.remove(granted)
            return False

    def _abandon(self, granted: Grant) -> None:
        with self._lock:
            if not granted.is_set():
                self._waiters.remove(granted)
                return
            conn = granted.conn
        if conn is True:
            self.release()
        elif conn is not CLOSED:
            self.park(conn)

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

    def try_acquire(self) -> bool:
        """Take a free slot if one is free and nobody waits; never waits."""
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            return False

    def _pop_idle(self) -> Any:
        """The last parked connection, or None (others pop it without the lock: AliasPool._unpark).

        Called under the lock: it looks before it pops, because the IndexError of
        an empty list is an allocation, which can start a garbage collection there
        (see acquire()). Another thread can still empty the list between the look
        and the pop: that rare IndexError is why the lock is re-entrant.
        """
        idle = self._idle
        if not idle:
            return None
        try:
            return idle.pop()
        except IndexError:
            return None

    def park(self, conn: Any) -> bool:
        """Keep *conn* and its slot for the next checkout, or hand both to the oldest waiter.

        A waiter gets the connection as is, without a trip through the
        QueuePool: under contention every checkout stays on the fast path.
        With nobody waiting (every return, without contention) no lock is
        taken: the connection is appended first and the waiters looked at
        after, and acquire() looks at the parked connections again once its
        waiter is in line, so that of the two, one sees the other.
        """
        waiters = self._waiters
        if not waiters:
            self._idle.append(conn)
            if not waiters:
                return True
            with self._lock:  # a waiter came in line meanwhile: hand it what is parked
                while waiters:
                    parked = self._pop_idle()
                    if parked is None:
                        break
                    granted = waiters.popleft()
                    granted.conn = parked
                    granted.set()
            return True
        with self._lock:
            if waiters:
                granted = waiters.popleft()
                granted.conn = conn
                granted.set()
                return True
            self._idle.append(conn)
            return True

    def waiting(self) -> int:
        return len(self._waiters)

    def close(self) -> None:
        """Hand out nothing more: every waiter, and every later acquire(), gets CLOSED."""
        with self._lock:
            self._closed = True
            while self._waiters:
                waiter = self._waiters.popleft()
                waiter.conn = CLOSED
                waiter.set()
