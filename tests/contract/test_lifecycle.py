"""Pool lifecycle: connections up to the bound are kept until idle for IDLE_TIMEOUT."""

from __future__ import annotations

import threading
import time

from django.db import connections

import pool_core
from pool_core import _sqla
from pool_core.registry import get_existing


def _wait_until(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class _Holders:
    """*n* threads that each check a connection out and return it when told to."""

    def __init__(self, engine, alias: str, n: int) -> None:
        self.alias = alias
        self.ids: list[int | None] = [None] * n
        self.holding = threading.Barrier(n + 1)
        self.release = [threading.Event() for _ in range(n)]
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._hold, args=(engine, i)) for i in range(n)]
        for t in self.threads:
            t.start()
        self.holding.wait(30)

    def _hold(self, engine, i: int) -> None:
        try:
            with pool_core.pinned(self.alias):  # holds in CHECKOUT="transaction" too
                self.ids[i] = engine.backend_id(self.alias)
                self.holding.wait(30)
                self.release[i].wait(30)
        except BaseException as e:  # noqa: BLE001
            self.errors.append(e)
        finally:
            connections[self.alias].close()

    def give_back(self, i: int) -> None:
        self.release[i].set()
        self.threads[i].join(30)
        assert not self.threads[i].is_alive()

    def give_back_all(self) -> None:
        for i in range(len(self.threads)):
            self.give_back(i)
        assert self.errors == []


def test_connections_beyond_pool_size_are_kept_when_returned(engine):
    """No overflow churn: the next burst reuses every connection the last one opened."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 2, "TIMEOUT": 30})
    first = _Holders(engine, alias, 3)
    first.give_back_all()
    s = pool_core.stats(alias)
    assert (s["connections_open"], s["connections_idle"], s["overflow_in_use"]) == (3, 3, 2)
    assert set(first.ids) <= engine.server_sessions()
    second = _Holders(engine, alias, 3)
    assert pool_core.stats(alias)["connections_checked_out"] == 3
    second.give_back_all()
    assert set(second.ids) == set(first.ids)
    s = pool_core.stats(alias)
    assert (s["connections_created"], s["connections_closed"]) == (3, 0)


def test_surplus_idle_longer_than_idle_timeout_is_closed_oldest_first(engine):
    """shrink_idle() closes connections idle > IDLE_TIMEOUT, least recently used first, down to POOL_SIZE."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 2, "IDLE_TIMEOUT": 60})
    h = _Holders(engine, alias, 3)
    for i in range(3):  # returned in order: 0 is the least recently used
        h.give_back(i)
    assert h.errors == []
    pool = get_existing(alias)
    now = time.monotonic()
    assert pool.shrink_idle(now) == 0  # nobody idle for 60 s yet
    assert pool_core.stats(alias)["connections_open"] == 3
    assert pool.shrink_idle(now + 61) == 2
    s = pool_core.stats(alias)
    assert (s["connections_open"], s["connections_idle"], s["connections_closed"]) == (1, 1, 2)
    assert pool.shrink_idle(now + 3600) == 0  # never below POOL_SIZE
    assert engine.wait_session_gone(h.ids[0]) and engine.wait_session_gone(h.ids[1])
    assert h.ids[2] in engine.server_sessions()
    assert engine.backend_id(alias) == h.ids[2]  # the survivor is the most recently used
    connections[alias].close()
    assert pool_core.stats(alias)["connections_created"] == 3


def test_checked_out_connections_are_never_closed_for_idleness(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 2, "IDLE_TIMEOUT": 60})
    h = _Holders(engine, alias, 3)
    try:
        pool = get_existing(alias)
        assert pool.shrink_idle(time.monotonic() + 3600) == 0
        assert set(h.ids) <= engine.server_sessions()
    finally:
        h.give_back_all()
    assert pool_core.stats(alias)["connections_open"] == 3


def test_housekeeper_closes_the_idle_surplus(engine):
    """With a short IDLE_TIMEOUT the housekeeper thread shrinks the pool by itself."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 1, "IDLE_TIMEOUT": 0.2})
    h = _Holders(engine, alias, 2)
    h.give_back_all()
    assert _wait_until(lambda: pool_core.stats(alias)["connections_open"] == 1)
    assert pool_core.stats(alias)["connections_closed"] == 1
    assert _wait_until(lambda: len(set(h.ids) & engine.server_sessions()) == 1)


def test_idle_timeout_none_keeps_every_connection(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 1, "IDLE_TIMEOUT": None})
    _Holders(engine, alias, 2).give_back_all()
    assert get_existing(alias).shrink_idle(time.monotonic() + 10**6) == 0
    assert pool_core.stats(alias)["connections_open"] == 2


def _idle_infos(alias: str) -> list[dict]:
    pool = get_existing(alias)
    return [p.info for p in pool._parked] + [r.info for r in _sqla.queued(pool._pool)]


def test_recycle_deadlines_are_jittered(engine):
    """Connections opened together get RECYCLE deadlines spread over its last 5 %."""
    from pool_core.pool import RECYCLE_JITTER

    recycle = 3600.0
    alias = engine.make_alias({"POOL_SIZE": 10, "MAX_OVERFLOW": 0, "RECYCLE": recycle})
    before = time.monotonic()
    _Holders(engine, alias, 10).give_back_all()
    after = time.monotonic()
    deadlines = [info["recycle_at"] for info in _idle_infos(alias)]
    assert len(deadlines) == 10
    for d in deadlines:
        assert before + recycle * (1 - RECYCLE_JITTER) <= d <= after + recycle
    # Uniform over 180 s: ten deadlines within one second has probability ~1e-20.
    assert len({int(d) for d in deadlines}) > 1


def test_connection_past_its_deadline_is_recycled_not_counted_as_broken(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "RECYCLE": 3600})
    first = engine.backend_id(alias)
    connections[alias].close()
    (info,) = _idle_infos(alias)
    info["recycle_at"] = time.monotonic() - 1.0  # as if its (jittered) lifetime had run out
    second = engine.backend_id(alias)
    connections[alias].close()
    assert second != first
    assert engine.wait_session_gone(first)
    s = pool_core.stats(alias)
    assert (s["connections_recycled"], s["connections_invalidated"], s["connections_created"]) == (1, 0, 2)
    assert engine.backend_id(alias) == second  # the new one has a fresh deadline
    connections[alias].close()


def test_recycle_none_sets_no_deadline(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "RECYCLE": None})
    engine.backend_id(alias)
    connections[alias].close()
    assert "recycle_at" not in _idle_infos(alias)[0]


def _queued(alias: str) -> int:
    return get_existing(alias)._slots.waiting()


def test_max_waiting_refuses_a_checkout_at_once(engine, caplog):
    """Past MAX_WAITING queued threads a checkout fails with PoolTimeout instead of queueing."""
    import logging

    import pytest

    from pool_core import PoolTimeout

    caplog.set_level(logging.WARNING, logger="pool_core")
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 60, "MAX_WAITING": 1})
    holder = _Holders(engine, alias, 1)
    waiter, got = engine.backend_id_thread(alias)
    waiter.start()
    try:
        assert _wait_until(lambda: _queued(alias) == 1)
        with pytest.raises(PoolTimeout) as info:
            connections[alias].ensure_connection()
        assert "MAX_WAITING=1" in str(info.value) and repr(alias) in str(info.value)
        # Refused, not timed out: the thread queued before it (TIMEOUT=60) still waits.
        assert _queued(alias) == 1
    finally:
        holder.give_back_all()
        waiter.join(60)
    assert got == holder.ids
    s = pool_core.stats(alias)
    assert (s["checkouts_shed"], s["checkout_timeouts"]) == (1, 0)
    assert "MAX_WAITING=1" in caplog.text


def test_drain_waits_for_checked_out_connections_then_closes_everything(engine):
    from pool_core import PoolError

    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 1, "TIMEOUT": 60})
    h = _Holders(engine, alias, 3)  # the pool is full (bound 3)
    waiter_errors: list[BaseException] = []

    def wait_turn() -> None:  # queued behind the full pool when drain() starts
        try:
            connections[alias].ensure_connection()
        except BaseException as e:  # noqa: BLE001
            waiter_errors.append(e)
        finally:
            connections[alias].close()

    waiter = threading.Thread(target=wait_turn)
    waiter.start()
    assert _wait_until(lambda: _queued(alias) == 1)
    result: list[int] = []
    drainer = threading.Thread(target=lambda: result.append(pool_core.drain(alias, timeout=60)))
    drainer.start()
    try:
        waiter.join(30)
        assert not waiter.is_alive() and len(waiter_errors) == 1
        assert isinstance(waiter_errors[0], PoolError) and "drain()" in str(waiter_errors[0])
        h.give_back(0)
        assert engine.wait_session_gone(h.ids[0])  # closed as it came back
        assert {h.ids[1], h.ids[2]} <= engine.server_sessions()  # checked out: left alone
        try:
            connections[alias].ensure_connection()
        except PoolError as e:
            assert repr(alias) in str(e)
        else:
            raise AssertionError("checkout after drain() succeeded")
        assert drainer.is_alive()  # still waiting for the other two
    finally:
        h.give_back_all()
        drainer.join(60)
    assert result == [0]
    assert engine.wait_session_gone(h.ids[1]) and engine.wait_session_gone(h.ids[2])
    assert pool_core.stats(alias)["connections_open"] == 0
    pool_core.dispose(alias)  # a new pool on the next checkout
    assert engine.backend_id(alias) not in h.ids
    connections[alias].close()


def test_a_connection_returned_while_drain_runs_is_closed_not_left_parked(engine):
    """Regression: a return that found the pool not yet retired, and parked its
    connection just after drain() had closed the parked ones, left it parked in
    the closed pool: never closed, its server session open until the process ended."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    with pool_core.pinned(alias):  # (transaction mode: still checked out after the query)
        backend = engine.backend_id(alias)
        pool = get_existing(alias)
        park = pool._slots.park

        def park_after_drain(conn):
            pool.begin_drain()  # drain() ran between the return's look at the pool and the park
            return park(conn)

        pool._slots.park = park_after_drain
        connections[alias].close()  # the return
    try:
        assert pool.retired
        assert engine.wait_session_gone(backend)
        assert pool._parked == []
    finally:
        pool_core.dispose(alias)
        connections[alias].close()


def test_drain_closes_idle_at_once_and_reports_what_is_still_checked_out(engine, caplog):
    import logging

    caplog.set_level(logging.WARNING, logger="pool_core")
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0})
    h = _Holders(engine, alias, 2)
    h.give_back(0)  # idle
    try:
        assert pool_core.drain(alias, timeout=0.05) == 1
        assert engine.wait_session_gone(h.ids[0])
        assert h.ids[1] in engine.server_sessions()
        assert "still checked out" in caplog.text and h.threads[1].name in caplog.text
    finally:
        h.give_back_all()
    assert engine.wait_session_gone(h.ids[1])  # closed when returned


def test_warm_opens_min_idle_connections_and_idle_timeout_keeps_them(engine):
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 2, "MIN_IDLE": 3, "IDLE_TIMEOUT": 60})
    assert pool_core.stats(alias) is None
    assert pool_core.warm(alias) == 3
    s = pool_core.stats(alias)
    assert (s["connections_open"], s["connections_idle"], s["connections_checked_out"]) == (3, 3, 0)
    assert connections[alias].connection is None
    assert pool_core.warm(alias) == 0  # already warm
    assert get_existing(alias).shrink_idle(time.monotonic() + 3600) == 0  # MIN_IDLE > POOL_SIZE
    h = _Holders(engine, alias, 3)
    h.give_back_all()
    s = pool_core.stats(alias)
    assert (s["connections_created"], s["checkouts"]) == (3, 4)  # warm's own checkout + 3


def _refused_port() -> int:
    import socket

    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_init_fail_timeout_makes_warm_fail_when_the_server_is_unreachable(engine):
    import pytest
    from django.db.utils import OperationalError

    if "PORT" not in engine.settings():
        pytest.skip("no HOST/PORT to point elsewhere")
    alias = engine.make_alias({"MIN_IDLE": 1, "INIT_FAIL_TIMEOUT": 0.2}, HOST="127.0.0.1", PORT=_refused_port())
    with pytest.raises(OperationalError) as info:
        pool_core.warm(alias)
    assert repr(alias) in str(info.value)


def test_warm_without_init_fail_timeout_only_warns(engine, caplog):
    import logging

    import pytest

    if "PORT" not in engine.settings():
        pytest.skip("no HOST/PORT to point elsewhere")
    caplog.set_level(logging.WARNING, logger="pool_core")
    alias = engine.make_alias({"MIN_IDLE": 1}, HOST="127.0.0.1", PORT=_refused_port())
    assert pool_core.warm(alias) == 0
    assert "connect on demand" in caplog.text and repr(alias) in caplog.text


def test_keepalive_pings_idle_connections_and_drops_dead_ones(engine):
    """KEEPALIVE_TIME: idle connections are pinged; one the server killed is closed, not handed out."""
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0, "KEEPALIVE_TIME": 30, "PRE_PING_IDLE": 3600})
    h = _Holders(engine, alias, 2)
    h.give_back_all()
    pool = get_existing(alias)
    now = time.monotonic()
    assert pool.keepalive(now) == 0  # nobody idle for 30 s yet
    assert pool.keepalive(now + 31) == 2
    s = pool_core.stats(alias)
    assert (s["pings"], s["pings_failed"], s["connections_open"]) == (2, 0, 2)
    assert pool.keepalive(now + 32) == 0  # pinged a second ago
    dead, alive = h.ids
    assert engine.kill(dead) is not False
    assert engine.wait_session_gone(dead)
    assert pool.keepalive(now + 62) == 2
    s = pool_core.stats(alias)
    assert (s["pings"], s["pings_failed"], s["connections_open"], s["connections_idle"]) == (4, 1, 1, 1)
    assert engine.backend_id(alias) == alive  # no ping needed (PRE_PING_IDLE), no dead one handed out
    connections[alias].close()
    assert pool.shrink_idle(now + 10**6) == 0  # POOL_SIZE floor


def test_a_failed_keepalive_ping_is_counted_once_its_connection_is_gone(engine, monkeypatch):
    """Whoever sees pings_failed go up sees the pool without the connection: the count
    follows the close (a monitor, or a test, reading stats meanwhile saw it still open)."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "KEEPALIVE_TIME": 30, "PRE_PING_IDLE": 3600})
    dead = engine.backend_id(alias)
    connections[alias].close()
    assert engine.kill(dead) is not False
    assert engine.wait_session_gone(dead)
    pool = get_existing(alias)
    assert pool is not None
    seen: list[tuple[int, int]] = []
    real = _sqla.invalidate_taken

    def closing(p, record):
        s = pool_core.stats(alias)
        seen.append((s["pings_failed"], s["connections_open"]))
        real(p, record)

    monkeypatch.setattr(_sqla, "invalidate_taken", closing)
    assert pool.keepalive(time.monotonic() + 31) == 1
    assert seen == [(0, 1)]  # while it is being closed: not counted yet
    s = pool_core.stats(alias)
    assert (s["pings_failed"], s["connections_open"]) == (1, 0)


def test_keepalive_ping_while_an_overflow_connection_comes_back_keeps_the_bound(engine):
    """IDLE_TIMEOUT=0 closes overflow connections on return through SQLAlchemy's
    queue, which holds POOL_SIZE. One returned while keepalive has a queued
    connection out for its ping can fill the queue: the pinged one is then
    closed, not dropped while still counted, which would shrink the pool for good."""
    alias = engine.make_alias(
        {"POOL_SIZE": 1, "MAX_OVERFLOW": 1, "IDLE_TIMEOUT": 0, "KEEPALIVE_TIME": 30,
         "PRE_PING_IDLE": 3600, "TIMEOUT": 10}
    )
    h = _Holders(engine, alias, 2)
    h.give_back(0)  # into the queue (overflow is open: nothing is parked)
    pool = get_existing(alias)
    real_ping = pool._ping

    def ping_while_the_overflow_one_comes_back(dbapi_connection):
        h.give_back(1)  # as another thread would, mid-ping: the queue is full again
        return real_ping(dbapi_connection)

    pool._ping = ping_while_the_overflow_one_comes_back
    # The one out for its ping (then closed: the queue was full), and the one
    # that came back meanwhile (pinged, queued).
    assert pool.keepalive(time.monotonic() + 31) == 2
    assert h.errors == []
    s = pool.stats()
    assert (s["connections_open"], s["pings_failed"]) == (1, 0)
    # Both connections of the bound can still be had at once.
    again = _Holders(engine, alias, 2)
    assert None not in again.ids
    again.give_back_all()
    assert pool_core.stats(alias)["checkout_timeouts"] == 0


def test_housekeeper_sends_keepalives(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "KEEPALIVE_TIME": 0.1})
    backend = engine.backend_id(alias)
    connections[alias].close()
    assert _wait_until(lambda: pool_core.stats(alias)["pings"] >= 2)
    assert backend in engine.server_sessions()
    assert pool_core.stats(alias)["pings_failed"] == 0


def test_the_bound_holds_across_dispose_while_connections_are_checked_out(engine):
    """dispose() closes idle connections now and checked-out ones when they come
    back; until then those still count towards the alias's bound, as across a
    settings change: the next pool does not open more beside them."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 30})
    held = _Holders(engine, alias, 1)
    before = pool_core.stats(alias)["checkouts"]
    pool_core.dispose(alias)
    t, got = engine.backend_id_thread(alias)
    t.start()
    try:
        assert _wait_until(
            lambda: got or (get_existing(alias) is not None and pool_core.stats(alias)["threads_waiting"] == 1)
        )
        assert got == []  # it waits for the slot the old pool's connection holds
    finally:
        held.give_back_all()
        t.join(30)
    assert len(got) == 1 and got[0] != held.ids[0]  # a new pool's connection, once the old one closed
    assert pool_core.stats(alias)["checkouts"] > before  # the alias's counters went on


def test_a_return_racing_a_dispose_is_neither_left_open_nor_counted_for_ever(engine):
    """dispose() (or drain(), or a settings change) between a returning connection's
    checkin bookkeeping and SQLAlchemy putting it into the queue: the connection
    used to land in the disposed queue, its server session open for the process's
    life, and to be counted as checked out of the replaced pool for ever."""
    import sys

    from pool_core.pool import AliasPool

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 3600})
    backend = engine.backend_id(alias)
    connections[alias].close()
    pool = get_existing(alias)
    proxied = pool.checkout()  # the parked one
    disposed: list[bool] = []

    def dispose_as_the_checkin_bookkeeping_returns(frame, event, arg):
        if event == "return" and not disposed:
            disposed.append(True)
            pool_core.dispose(alias)  # as another thread would, right there
        return dispose_as_the_checkin_bookkeeping_returns

    def trace(frame, event, arg):
        if frame.f_code is AliasPool._on_checkin.__code__:
            return dispose_as_the_checkin_bookkeeping_returns
        return None

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        pool.return_unused(proxied)  # through SQLAlchemy's checkin
    finally:
        sys.settrace(previous)
    assert disposed == [True]
    assert engine.wait_session_gone(backend)  # closed, not left in the disposed queue
    with pool_core.pinned(alias):  # held in CHECKOUT="transaction" too
        assert engine.backend_id(alias) != backend  # a new pool, a new connection
        assert pool_core.stats(alias)["connections_checked_out"] == 1  # that one only
    connections[alias].close()
    assert pool_core.stats(alias)["connections_checked_out"] == 0


def test_a_checkout_completing_after_a_dispose_is_counted_until_it_comes_back(engine):
    """A thread already inside a checkout when dispose() retires the pool gets its
    connection from the retired pool: it still holds a place in the alias's bound
    and shows in the gauges until it comes back (then it is closed)."""
    import sys

    from pool_core.pool import AliasPool

    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 3600})
    backend = engine.backend_id(alias)
    connections[alias].close()
    pool_core.close_idle(alias)  # the next checkout opens one through SQLAlchemy
    pool = get_existing(alias)
    disposed: list[bool] = []

    def trace(frame, event, arg):
        if frame.f_code is AliasPool._on_checkout.__code__ and event == "call" and not disposed:
            disposed.append(True)
            pool_core.dispose(alias)  # as another thread would, mid-checkout
        return None

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        mine = pool.checkout()
    finally:
        sys.settrace(previous)
    assert disposed == [True] and pool_core.stats(alias) is None  # no live pool yet
    other, got = engine.backend_id_thread(alias)
    other.start()
    other.join(30)
    assert len(got) == 1 and isinstance(got[0], int) and got[0] != backend
    s = pool_core.stats(alias)
    assert (s["connections_checked_out"], s["connections_idle"]) == (1, 1)  # mine, and the new pool's
    pool.return_unused(mine)
    assert pool_core.stats(alias)["connections_checked_out"] == 0


def test_keepalive_racing_a_dispose_closes_the_connection(engine):
    """A connection out of the queue for its keepalive ping when the pool is retired is closed.

    It used to be put back into the disposed pool's queue, where nothing closes it: a server
    session left open (over JDBC until the JVM's garbage collector ran).
    """
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "KEEPALIVE_TIME": 30, "PRE_PING_IDLE": 3600})
    backend = engine.backend_id(alias)
    connections[alias].close()
    pool = get_existing(alias)
    real_ping = pool._ping

    def ping_while_disposed(dbapi_connection):
        pool_core.dispose(alias)  # as another thread would, mid-ping
        return real_ping(dbapi_connection)

    pool._ping = ping_while_disposed
    assert pool.keepalive(time.monotonic() + 31) == 1
    assert pool.stats()["connections_open"] == 0
    assert _wait_until(lambda: backend not in engine.server_sessions())


def test_keepalive_off_by_default(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    engine.backend_id(alias)
    connections[alias].close()
    assert get_existing(alias).keepalive(time.monotonic() + 10**6) == 0
