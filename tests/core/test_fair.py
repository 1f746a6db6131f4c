"""The fair hand-off (pool_core._fair.FairSlots): nothing is lost when a wait is interrupted."""

from __future__ import annotations

import pytest

from pool_core._fair import FairSlots


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
