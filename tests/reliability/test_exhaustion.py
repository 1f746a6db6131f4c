"""Scenario 4, exhaustion: 256 threads on a pool of 10 + 10.

Never more than 20 server connections, no deadlock, waiters served in
arrival order, timeouts raise the core's PoolTimeout, zero lost writes.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.db.utils import OperationalError

import pool_core
from pool_core import PoolTimeout, registry
from tests.reliability._figures import record
from tests.reliability.conftest import (
    VENDORS,
    Monitor,
    drop_engine,
    make_engine,
    shared_server,
    start_and_join,
    wait_until,
)
from tests.testapp.models import Note

pytestmark = pytest.mark.heavy

THREADS, SIZE, OVERFLOW, OPS = 256, 10, 10, 6


@pytest.fixture(params=VENDORS)
def eng(request, fresh_pools):
    e = make_engine(shared_server(request.param), request.param, "exh")
    yield e
    drop_engine(e)


def test_256_threads_on_10_plus_10(eng):
    alias = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": 300})
    bound = SIZE + OVERFLOW
    errors: list[BaseException] = []
    written: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(OPS):
                tag = f"x{n}-{i}"
                Note.objects.using(alias).create(text=tag, n=n)
                connections[alias].close()  # end of request
                with lock:
                    written.append(tag)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connections[alias].close()

    # Phase 1: load. Every thread gets its turn; nobody times out.
    with Monitor(eng) as mon:
        start_and_join([threading.Thread(target=work, args=(n,), name=f"w{n}") for n in range(THREADS)], 600)
    stats = pool_core.stats(alias)
    in_table = set(Note.objects.using(alias).values_list("text", flat=True))
    connections[alias].close()
    lost = len(set(written) - in_table)
    assert errors == []
    assert len(written) == THREADS * OPS
    assert lost == 0
    assert mon.peak <= bound, mon.peak
    assert stats["connections_open"] <= bound
    assert stats["checkout_timeouts"] == 0
    assert stats["connections_checked_out"] == 0

    # Phase 2: fair order. Hold every connection, queue the other 236 threads
    # one at a time, then let go: connections go out in arrival order.
    holders_ready, release = threading.Barrier(bound + 1), threading.Event()

    def hold() -> None:
        try:
            eng.backend_id(alias)
            holders_ready.wait(60)
            release.wait(120)
        finally:
            connections[alias].close()

    granted: list[int] = []
    waiter_errors: list[BaseException] = []

    def wait_turn(k: int) -> None:
        try:
            connections[alias].ensure_connection()
            with lock:
                granted.append(k)
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
        except BaseException as e:  # noqa: BLE001
            waiter_errors.append(e)
        finally:
            connections[alias].close()

    holders = [threading.Thread(target=hold) for _ in range(bound)]
    for t in holders:
        t.start()
    holders_ready.wait(60)
    # The pool's own grant order: which queued waiter each released slot goes
    # to (recording in the waiter threads would add scheduling jitter).
    slots = registry.get_existing(alias)._slots
    ticket: dict[int, int] = {}
    served: list[int] = []
    real_release, real_park = slots.release, slots.park
    # Reentrant, so that noting the first waiter and granting it are one step.
    slots._lock = threading.RLock()

    def release_and_note() -> None:
        with slots._lock:
            if slots._waiters:
                served.append(ticket[id(slots._waiters[0])])
            real_release()

    def park_and_note(conn) -> bool:  # a returned connection handed straight to a waiter
        with slots._lock:
            if slots._waiters:
                served.append(ticket[id(slots._waiters[0])])
            return real_park(conn)

    slots.release, slots.park = release_and_note, park_and_note
    waiters = []
    try:
        for k in range(THREADS - bound):
            t = threading.Thread(target=wait_turn, args=(k,), name=f"q{k}")
            t.start()
            waiters.append(t)
            # The slot queue itself, not threads_waiting: a checkout counts as
            # waiting a moment before it joins the queue.
            wait_until(lambda k=k: len(slots._waiters) == k + 1, 60, f"waiter {k} queued")
            ticket[id(slots._waiters[-1])] = k
    finally:  # also after a failure: no thread left holding or waiting
        release.set()
        for t in holders + waiters:
            t.join(300)
        slots.release, slots.park = real_release, real_park
    assert not any(t.is_alive() for t in holders + waiters), "deadlock while draining the queue"
    assert waiter_errors == []
    assert sorted(granted) == list(range(THREADS - bound))
    assert served == list(range(THREADS - bound))  # first come, first served
    # For the record: how far the order seen by the threads themselves drifts.
    overtaken = max(sum(1 for later in granted[:pos] if later > k) for pos, k in enumerate(granted))

    # Phase 3: timeouts. Hold every connection; 32 more checkouts time out
    # with the core's error, then the pool serves again.
    alias_t = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": 0.5})
    holders_ready, release = threading.Barrier(bound + 1), threading.Event()
    alias = alias_t
    holders = [threading.Thread(target=hold) for _ in range(bound)]
    for t in holders:
        t.start()
    holders_ready.wait(60)
    timeouts: list[BaseException] = []

    def too_many() -> None:
        try:
            connections[alias_t].ensure_connection()
        except BaseException as e:  # noqa: BLE001
            timeouts.append(e)
        finally:
            connections[alias_t].close()

    try:
        start_and_join([threading.Thread(target=too_many) for _ in range(32)], 120)
    finally:
        release.set()
        for t in holders:
            t.join(60)
    assert len(timeouts) == 32
    for e in timeouts:
        assert isinstance(e, PoolTimeout) and isinstance(e, OperationalError), repr(e)
        assert repr(alias_t) in str(e) and "POOL_SIZE=10" in str(e) and "MAX_OVERFLOW=10" in str(e)
    assert pool_core.stats(alias_t)["checkout_timeouts"] == 32
    eng.backend_id(alias_t)
    connections[alias_t].close()

    record("4. exhaustion", eng.id, operations=THREADS * OPS + (THREADS - bound) + 32, faults=None,
           errors=len(errors) + len(waiter_errors), rows_lost=lost, peak_connections=mon.peak, bound=bound, peak_raw=mon.peak_raw,
           note=f"{THREADS} threads; 0 timeouts under load; queue of {THREADS - bound} served in order "
                f"(pool grant order exact; threads saw up to {overtaken} overtakes from scheduling); 32/32 forced timeouts raised PoolTimeout")
