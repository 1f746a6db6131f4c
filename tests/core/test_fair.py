"""The fair hand-off (pool_core._fair.FairSlots): nothing is lost when a wait is interrupted."""

from __future__ import annotations

from collections import deque

import pytest

from pool_core._fair import FairSlots, Grant


class Boom(Exception):
    pass


@pytest.fixture
def slots():
    s = FairSlots(1)
    assert s.acquire(1) is True  # the only slot is taken: the next acquire() waits
    return s


def test_a_waiter_interrupted_before_its_turn_leaves_the_queue(slots):
    def fail():
        raise Boom

    with pytest.raises(Boom):
        slots.acquire(5, fail)
    assert slots.waiting() == 0
    slots.release()
    assert slots.acquire(0.01) is True  # the slot went to nobody else


def test_a_connection_handed_to_a_waiter_that_fails_goes_to_the_next_checkout(slots):
    def handed_over_then_fail():
        slots.park("conn")  # the holder returns its connection to this, the oldest, waiter
        raise Boom

    with pytest.raises(Boom):
        slots.acquire(5, handed_over_then_fail)
    assert slots.acquire(0.01) == "conn"  # parked for the next checkout, slot included


def test_a_slot_handed_to_a_waiter_that_fails_goes_to_the_next_checkout(slots):
    def released_then_fail():
        slots.release()  # the holder's slot goes to this waiter
        raise Boom

    with pytest.raises(Boom):
        slots.acquire(5, released_then_fail)
    assert slots.acquire(0.01) is True


def test_a_garbage_collected_checkout_returned_while_a_waiter_queues_up_does_not_deadlock(monkeypatch):
    """A garbage collection can start at any allocation and run SQLAlchemy's finalizer, which returns
    a dead thread's checkout through release() on the same thread. acquire() allocates its grant:
    that must not happen under the lock (CI hung there: test_dead_threads_do_not_starve_the_pool)."""
    import threading

    from pool_core import _fair

    slots = FairSlots(1)
    assert slots.acquire(1) is True  # a dead thread's checkout holds the only slot
    made = []

    class CollectingGrant(_fair.Grant):
        def __init__(self):
            if not made:  # the collection this allocation starts returns the dead thread's slot
                made.append(True)
                slots.release()
            super().__init__()

    monkeypatch.setattr(_fair, "Grant", CollectingGrant)
    got = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire(5)), daemon=True)
    waiter.start()
    waiter.join(10)
    assert not waiter.is_alive(), "acquire() deadlocked on its own lock"
    assert made and got == [True]  # and the slot the collection freed was not left unused


# park() takes no lock while nobody waits: it appends the connection, then looks
# for waiters; acquire() looks at the parked connections again once its waiter is
# in line. Of a park() and an acquire() that overlap, one sees the other.


def test_a_connection_parked_just_before_a_waiter_got_in_line_goes_to_that_waiter(slots):
    class ParkedMeanwhile(deque):
        def append(self, granted):
            # Another thread's park() ran between acquire()'s first look at the
            # parked connections and now: it found nobody waiting.
            slots.park("conn")
            super().append(granted)

    slots._waiters = ParkedMeanwhile()
    assert slots.acquire(5) == "conn"  # not a wait until the timeout, with the connection parked
    assert slots.waiting() == 0
    assert slots._idle == []


def test_a_waiter_that_got_in_line_while_a_connection_was_parked_gets_it(slots):
    got = []

    class WaiterMeanwhile(list):
        def append(self, conn):
            super().append(conn)
            # Another thread's acquire() got in line between park()'s append
            # and its look for waiters, having found nothing parked.
            granted = Grant()
            slots._waiters.append(granted)
            got.append(granted)

    slots._idle = WaiterMeanwhile()
    assert slots.park("conn") is True
    (granted,) = got
    assert granted.is_set() and granted.conn == "conn"
    assert slots.waiting() == 0
    assert list(slots._idle) == []


# A garbage collection can start at any allocation, and raising an exception
# allocates one. Under FairSlots' lock, a collection runs SQLAlchemy's finalizer
# of a garbage-collected checkout, which returns its slot through release() on the
# same thread: the CI runs of 4c46829 and 45e70fe hung a uvicorn server that way
# (every checkout, and the event loop, blocked on the lock) after acquire() began
# to pop the parked list under the lock and catch the IndexError of an empty one.


class Parked(list):
    """The parked list: counts pops; *collect* starts a collection at pop() that returns a dead thread's slot."""

    def __init__(self, slots, collect=False, taken_meanwhile=False):
        super().__init__()
        self.slots, self.collect, self.taken_meanwhile, self.pops = slots, collect, taken_meanwhile, 0

    def __bool__(self):
        # taken_meanwhile: another thread's lock-free checkout takes the last
        # parked connection between the look and the pop.
        return self.taken_meanwhile or super().__len__() > 0

    def pop(self, *args):
        self.pops += 1
        if self.collect and self.pops == 1:
            self.slots.release()  # the finalizer, on this thread, inside acquire()'s lock
        return super().pop(*args)


def _acquire_in_a_thread(slots, timeout: float) -> list:
    import threading

    got: list = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire(timeout)), daemon=True)
    waiter.start()
    waiter.join(10)
    assert not waiter.is_alive(), "acquire() deadlocked on its own lock"
    return got


def test_acquire_does_not_pop_an_empty_parked_list_under_its_lock(slots):
    # The pop of an empty list raises IndexError: an allocation, so a possible
    # garbage collection, under the lock, on every checkout that has to wait.
    slots._idle = Parked(slots)
    assert _acquire_in_a_thread(slots, 0.01) == [False]  # nothing free: it waited, then timed out
    assert slots._idle.pops == 0


def test_a_collection_started_where_a_connection_was_taken_between_look_and_pop_does_not_deadlock(slots):
    slots._idle = Parked(slots, collect=True, taken_meanwhile=True)
    got = _acquire_in_a_thread(slots, 5)
    assert slots._idle.pops >= 1  # the collection did run under the lock
    # The slot it returned is the waiter's at once, not left unused until the timeout.
    assert got == [True]
    assert slots.waiting() == 0
