"""The checkout fast path: a connection returned clean is parked for the next checkout.

Parked connections keep their slot and skip SQLAlchemy's checkout/checkin; these
tests pin down that they are still pinged when idle, closed by close_idle() and
dispose(), never kept as overflow, and never parked after an error.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from django.db import DatabaseError, connections, transaction

import pool_core
from pool_core.hooks import TransactionState


def _wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_busy_connection_is_reused_without_a_ping(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60})
    ids = set()
    for _ in range(3):
        ids.add(engine.backend_id(alias))
        connections[alias].close()
    s = pool_core.stats(alias)
    assert len(ids) == 1
    assert (s["checkouts"], s["pings"], s["connections_created"]) == (3, 0, 1)
    assert (s["connections_idle"], s["connections_checked_out"]) == (1, 0)


def test_parked_connection_idle_longer_than_pre_ping_idle_is_pinged(engine):
    """A connection killed while parked is replaced once it sat idle for PRE_PING_IDLE."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 0.05})
    victim = engine.backend_id(alias)
    connections[alias].close()
    returned = time.monotonic()
    engine.kill(victim)
    _wait_until(lambda: time.monotonic() - returned > 0.05)
    replacement = engine.backend_id(alias)
    connections[alias].close()
    assert replacement != victim
    s = pool_core.stats(alias)
    assert (s["pings"], s["pings_failed"], s["connections_created"]) == (1, 1, 2)


def test_connection_that_saw_an_error_is_pinged_before_reuse(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60})
    first = engine.backend_id(alias)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_here")
    except DatabaseError:
        pass
    connections[alias].close()
    assert engine.backend_id(alias) == first
    connections[alias].close()
    assert pool_core.stats(alias)["pings"] == 1


def test_overflow_connection_is_closed_on_return(engine):
    """With IDLE_TIMEOUT=0 an overflow connection closes when it is returned."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 1, "TIMEOUT": 30, "IDLE_TIMEOUT": 0})
    holding = threading.Barrier(2)
    release = threading.Event()
    ids: list[int] = []

    def hold() -> None:
        try:
            ids.append(engine.backend_id(alias))
            holding.wait(30)
            release.wait(30)
        finally:
            connections[alias].close()

    t = threading.Thread(target=hold)
    t.start()
    ids.append(engine.backend_id(alias))
    holding.wait(30)
    connections[alias].close()
    release.set()
    t.join(30)
    assert len(set(ids)) == 2
    assert pool_core.stats(alias)["connections_open"] == 1
    assert _wait_until(lambda: len(set(ids) & engine.server_sessions()) == 1)


def test_close_idle_and_dispose_close_parked_connections(engine):
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0})
    first = engine.backend_id(alias)
    connections[alias].close()
    pool_core.close_idle(alias)
    assert pool_core.stats(alias)["connections_open"] == 0
    assert _wait_until(lambda: first not in engine.server_sessions())
    second = engine.backend_id(alias)
    connections[alias].close()
    assert second != first
    pool_core.dispose(alias)
    assert _wait_until(lambda: second not in engine.server_sessions())


def test_a_checkout_during_close_idle_does_not_wait_for_the_connection_being_closed(engine):
    """close_idle() takes an idle connection out of SQLAlchemy's queue to close it.
    A checkout that comes meanwhile must not wait on the now empty queue for a
    connection that will never come back (SQLAlchemy's full pool waits there, and
    nothing wakes it when the closed one stops counting): it gets a new one."""
    import os
    import sys

    from pool_core import _sqla

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 10})
    engine.backend_id(alias)
    connections[alias].close()  # the only connection: idle
    other, got = engine.backend_id_thread(alias)
    waits_in: list[str] = []
    real_close_taken = _sqla.close_taken

    def close_taken_while_a_checkout_comes(pool, record):
        other.start()  # as another thread would, while the idle one is being closed

        def waiting() -> bool:
            frame = sys._current_frames().get(other.ident)
            return frame is not None and frame.f_code.co_name == "wait"

        assert _wait_until(waiting)
        frame = sys._current_frames()[other.ident]
        while frame is not None:
            waits_in.append(frame.f_code.co_filename)
            frame = frame.f_back
        return real_close_taken(pool, record)

    _sqla.close_taken = close_taken_while_a_checkout_comes
    try:
        pool_core.close_idle(alias)
    finally:
        _sqla.close_taken = real_close_taken
    other.join(30)
    # It waited for a slot (handed over once the close was done), not in
    # SQLAlchemy's queue, which only a TIMEOUT would have let it leave.
    assert waits_in and not [f for f in waits_in if f.endswith(os.path.join("sqlalchemy", "util", "queue.py"))]
    assert len(got) == 1 and isinstance(got[0], int), got  # a new connection, not a PoolTimeout
    s = pool_core.stats(alias)
    assert (s["connections_created"], s["checkout_timeouts"]) == (2, 0)


def test_returned_connection_goes_to_a_waiter_not_to_the_parked_ones(engine):
    """With a thread waiting, a returned connection is handed over, never parked."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 20})
    engine.backend_id(alias)
    got: list[int] = []

    def waiter() -> None:
        try:
            got.append(engine.backend_id(alias))
        finally:
            connections[alias].close()

    t = threading.Thread(target=waiter)
    t.start()
    assert _wait_until(lambda: pool_core.stats(alias)["threads_waiting"] == 1)
    connections[alias].close()
    t.join(30)
    assert len(got) == 1
    s = pool_core.stats(alias)
    # Served by the return, not by a timeout (a timed-out waiter gets no connection at all).
    assert s["checkout_timeouts"] == 0 and s["connections_created"] == 1


def test_overflow_connections_close_on_return_even_with_parked_ones(engine):
    """IDLE_TIMEOUT=0: parked connections never keep overflow ones open (idle <= POOL_SIZE)."""
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 1, "TIMEOUT": 30, "IDLE_TIMEOUT": 0})
    engine.backend_id(alias)
    connections[alias].close()  # parked, POOL_SIZE not exceeded
    holding = threading.Barrier(4)
    release = threading.Event()

    def hold() -> None:
        try:
            engine.backend_id(alias)
            holding.wait(30)
            release.wait(30)
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=hold) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        holding.wait(30)
        assert pool_core.stats(alias)["connections_open"] == 3
    finally:
        release.set()
        for t in threads:
            if t.ident is not None:
                t.join(30)
    s = pool_core.stats(alias)
    assert (s["connections_open"], s["connections_idle"]) == (2, 2)


def test_in_place_change_of_nested_settings_is_seen_by_the_short_reconnect(engine):
    """Mutating OPTIONS in place (not replacing the dict) still gets a new pool."""
    alias = engine.make_alias({"POOL_SIZE": 2})
    old = engine.backend_id(alias)
    connections[alias].close()
    connections[alias].settings_dict["OPTIONS"]["connect_timeout"] = 9
    new = engine.backend_id(alias)
    connections[alias].close()
    assert new != old
    assert _wait_until(lambda: old not in engine.server_sessions())


def test_connection_created_is_sent_on_every_checkout(engine):
    """Receivers of connection_created see every checkout, as with Django's own connect()."""
    from django.db.backends.signals import connection_created

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    seen: list[str] = []

    def receiver(sender, connection, **kwargs):
        if connection.alias == alias:
            seen.append(connection.alias)

    connection_created.connect(receiver)
    try:
        for _ in range(3):
            engine.backend_id(alias)
            connections[alias].close()
    finally:
        connection_created.disconnect(receiver)
    assert seen == [alias] * 3
    assert pool_core.stats(alias)["connections_created"] == 1


def test_autocommit_left_off_is_restored_on_the_next_checkout(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    first = engine.backend_id(alias)
    connections[alias].close()
    connections[alias].ensure_connection()
    connections[alias].set_autocommit(False)
    connections[alias].close()
    assert engine.backend_id(alias) == first
    wrapper = connections[alias]
    assert wrapper.get_autocommit() is True
    assert wrapper.pool_driver_autocommit(wrapper.connection) is True
    connections[alias].close()



class _HookFailed(Exception):
    pass


def _fail() -> None:
    raise _HookFailed


def _after_connect(alias: str, short: bool, history: str) -> tuple[dict, object, tuple[float, float]]:
    """A fresh wrapper of *alias*: a full connect(), a checkout ended as *history* says, one more connect().

    The last connect() takes the short reconnect if *short*, else Django's full
    connect() (the short way is ruled out by clearing _pool_reconnect_state).
    *history*: "closed" (close()), "obsolete" (the request-end check,
    close_if_unusable_or_obsolete(), under CONN_MAX_AGE=0: health_check_done
    is left False) or "commit_hook_raised" (an on_commit() callback raised,
    which leaves run_commit_hooks_on_set_autocommit_on set). Returns (a copy of
    wrapper.__dict__ right after the last connect(), the wrapper, the monotonic
    bracket of that connect()); the wrapper is closed.
    """
    from django.db import transaction

    wrapper = connections.create_connection(alias)
    connections[alias] = wrapper  # atomic(using=alias) and on_commit() act on this wrapper
    try:
        wrapper.ensure_connection()
        if history == "obsolete":
            wrapper.close_if_unusable_or_obsolete()
            assert wrapper.connection is None and wrapper.health_check_done is False
        else:
            if history == "commit_hook_raised":
                with pytest.raises(_HookFailed):
                    with transaction.atomic(using=alias):
                        transaction.on_commit(_fail, using=alias)
                assert wrapper.run_commit_hooks_on_set_autocommit_on is True
            wrapper.close()
        state = wrapper._pool_reconnect_state
        assert state is not None
        if not short:
            wrapper._pool_reconnect_state = None
        before = time.monotonic()
        wrapper.connect()
        after = time.monotonic()
        # Which way it went: only the full connect() records a new state.
        assert (wrapper._pool_reconnect_state is state) is short
        return dict(wrapper.__dict__), wrapper, (before, after)
    finally:
        wrapper.close()
        del connections[alias]


def _comparable(wrapper, value):
    """*value* with what refers to *wrapper* itself replaced by what can be compared across wrappers."""
    import inspect

    if value is wrapper:
        return "<the wrapper>"
    if inspect.ismethod(value) and value.__self__ is wrapper:
        return ("method of the wrapper", value.__func__)
    if getattr(value, "connection", None) is wrapper or getattr(value, "wrapper", None) is wrapper:
        # features, ops, client, creation, introspection, validation, wrap_database_errors: one per wrapper.
        return ("object of the wrapper", type(value))
    if isinstance(value, type(threading.Lock())):
        return ("a lock", value.locked())  # _thread_sharing_lock: one per wrapper
    if type(value).__eq__ is object.__eq__ and hasattr(value, "__dict__"):
        # Compared by identity, made per wrapper (django-tenants' FakeTenant): compare the contents.
        return ("an instance", type(value), vars(value))
    return value


@pytest.mark.requires("short_reconnect")
@pytest.mark.parametrize("history", ["closed", "obsolete", "commit_hook_raised"])
def test_short_reconnect_leaves_the_wrapper_as_djangos_connect_does(engine, history):
    """PoolingMixin._pool_reconnect copies the body of Django's connect() (of the Django
    version running the test): both must leave the same wrapper state.

    Two fresh wrappers of the same alias get the same history; the last
    connect() of one takes the short reconnect, of the other Django's full
    connect(). Both get the same (only) physical connection, set up already.
    """
    alias = engine.make_alias(
        {"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60}, CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=True
    )
    engine.backend_id(alias)  # the physical connection is opened and set up once, then parked
    connections[alias].close()
    short, short_wrapper, short_when = _after_connect(alias, True, history)
    full, full_wrapper, full_when = _after_connect(alias, False, history)
    assert short.keys() == full.keys()
    # Legitimately different, checked apart:
    #  - close_at: monotonic() + CONN_MAX_AGE (0) at the time of each connect();
    #  - _pool_proxied: the pool's proxy of the same physical connection (one per checkout).
    for name, state, (before, after) in (("short", short, short_when), ("full", full, full_when)):
        assert before <= state.pop("close_at") <= after, name
        proxied = state.pop("_pool_proxied")
        assert proxied is not None and proxied.dbapi_connection is state["connection"], name
    assert short["connection"] is not None and short["connection"] is full["connection"]
    assert {k: _comparable(short_wrapper, v) for k, v in short.items()} == {
        k: _comparable(full_wrapper, v) for k, v in full.items()
    }


@pytest.mark.requires("short_reconnect")
def test_short_reconnect_also_serves_a_checkout_that_waited(engine):
    """Under contention no connection is parked when a request starts: the checkout waits in
    line and still takes the short reconnect (before, it fell back to Django's full connect()),
    from ensure_connection() itself (before, through Django's ensure_connection() and connect())."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 30})
    first = engine.backend_id(alias)
    connections[alias].close()
    state = connections[alias]._pool_reconnect_state
    assert state is not None
    connects: list[int] = []
    connect = connections[alias].connect
    connections[alias].connect = lambda: (connects.append(1), connect())[1]
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            engine.backend_id(alias)
            holding.set()
            release.wait(30)
        finally:
            connections[alias].close()

    def release_once_waiting() -> None:
        _wait_until(lambda: pool_core.stats(alias)["threads_waiting"] == 1, 30)
        release.set()

    holder, releaser = threading.Thread(target=hold), threading.Thread(target=release_once_waiting)
    holder.start()
    try:
        assert holding.wait(30)
        releaser.start()
        assert engine.backend_id(alias) == first  # waited for the holder's (the only) connection
    finally:
        release.set()
        holder.join(30)
        if releaser.ident is not None:
            releaser.join(30)
    assert connections[alias]._pool_reconnect_state is state  # the short way: no full connect() since
    assert connects == []
    connections[alias].close()
    s = pool_core.stats(alias)
    assert (s["connections_created"], s["checkouts"], s["checkout_timeouts"]) == (1, 3, 0)
    assert s["checkout_wait_ms_max"] > 0


def test_request_end_return_leaves_the_wrapper_and_pool_as_djangos_close_does(engine):
    """PoolingMixin.close_if_unusable_or_obsolete() does in one step what Django's
    close_if_unusable_or_obsolete() and close(), then the pool's give_back(), do
    at the end of a request: both must leave the same wrapper state and the
    same pool (connection parked, same counters).

    Two fresh wrappers of the same alias run the same request; one returns its
    connection the one-step way, the other (the class attribute turned off on
    the instance) Django's way.
    """
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60}, CONN_MAX_AGE=0)
    engine.backend_id(alias)
    connections[alias].close()
    seen = {}
    for one_step in (True, False):
        wrapper = connections.create_connection(alias)
        connections[alias] = wrapper
        try:
            if not one_step:
                wrapper._pool_plain_close = False
            # (Not a cursor: CHECKOUT="transaction" would give the connection back when it closes.)
            wrapper.ensure_connection()
            pool = wrapper._pool_current
            calls = []
            for name in ("put_back", "give_back"):
                method = getattr(pool, name)
                setattr(pool, name, lambda *a, _m=method, _n=name, _c=calls: (_c.append(_n), _m(*a))[1])
            before = pool_core.stats(alias)
            try:
                wrapper.close_if_unusable_or_obsolete()
            finally:
                del pool.put_back, pool.give_back
            after = pool_core.stats(alias)
            state = dict(wrapper.__dict__)
            state.pop("_pool_plain_close", None)  # how this test picks the path
            # Set again (to None) only by the layered path, around Django's close.
            assert state.pop("_pool_closing_for", None) is None
            # monotonic() + CONN_MAX_AGE of each wrapper's connect().
            assert state.pop("close_at") is not None
            seen[one_step] = (calls, state, wrapper, before, after)
        finally:
            wrapper.close()
            del connections[alias]
    (fast_calls, fast, fast_wrapper, fast_before, fast_after) = seen[True]
    (slow_calls, slow, slow_wrapper, slow_before, slow_after) = seen[False]
    if type(fast_wrapper)._pool_plain_close:
        assert fast_calls == ["put_back"]
    assert slow_calls == ["give_back"]
    assert fast["connection"] is None and slow["connection"] is None
    assert fast_after["connections_idle"] == slow_after["connections_idle"] == 1
    # Both remember the connection they parked, for the next checkout's reclaim;
    # each under the lease of its own checkout (the second checkout's is later).
    fast_soft, slow_soft = fast.pop("_pool_soft"), slow.pop("_pool_soft")
    assert fast_soft[:2] == slow_soft[:2] and fast_soft[3:] == slow_soft[3:]
    assert 0 < fast_soft[2] < slow_soft[2]
    assert {k: _comparable(fast_wrapper, v) for k, v in fast.items()} == {
        k: _comparable(slow_wrapper, v) for k, v in slow.items()
    }
    changed = {k for k in fast_after if fast_after[k] != fast_before[k]}
    assert changed == {k for k in slow_after if slow_after[k] != slow_before[k]}
    for k in changed:
        if isinstance(fast_after[k], (int, float)) and not k.endswith(("_ms", "_max", "_sum")):
            assert fast_after[k] - fast_before[k] == slow_after[k] - slow_before[k], k


@pytest.mark.requires("transaction_checkout")  # the driver reports a transaction opened by raw SQL
def test_request_end_return_rolls_back_a_raw_begin(engine):
    """A transaction opened with raw SQL in autocommit (Django cannot see it) is not a clean
    return: the one-step path leaves it to give_back(), which rolls it back."""
    from tests.testapp.models import Note

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60}, CONN_MAX_AGE=0)
    wrapper = connections[alias]
    wrapper.ensure_connection()
    pool = wrapper._pool_current
    calls = []
    for name in ("put_back", "give_back"):
        method = getattr(pool, name)
        setattr(pool, name, lambda *a, _m=method, _n=name: (calls.append((_n, _m(*a))), calls[-1][1])[1])
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("BEGIN")
        if (
            wrapper.connection is None  # CHECKOUT="transaction" gave it back: the driver saw no transaction
            or wrapper.pool_transaction_state(wrapper.connection) != TransactionState.IN_TRANSACTION
        ):
            pytest.skip("the driver does not report a raw BEGIN (mysqlclient; docs/behaviour.md)")
        Note.objects.using(alias).create(text="raw-begin")
        wrapper.close_if_unusable_or_obsolete()
    finally:
        del pool.put_back, pool.give_back
    assert wrapper.connection is None
    assert [name for name, _ in calls] == (["put_back", "give_back"] if type(wrapper)._pool_plain_close else ["give_back"])
    assert calls[0] == ("put_back", False) or calls[0][0] == "give_back"
    assert pool_core.stats(alias)["rollbacks_on_return"] == 1
    assert not Note.objects.using(alias).filter(text="raw-begin").exists()
    connections[alias].close()


# -- Thread affinity: a wrapper takes back the connection it parked (AliasPool.reclaim) --


def _request(engine, alias: str, wrapper) -> int:
    """One request on *wrapper* (the alias's wrapper meanwhile): its backend id, connection returned."""
    connections[alias] = wrapper
    backend = engine.backend_id(alias)
    wrapper.close_if_unusable_or_obsolete()  # request_finished
    assert wrapper.connection is None
    return backend


@contextlib.contextmanager
def _two_wrappers(alias: str):
    """Two wrappers of *alias* (as two threads have), closed and forgotten afterwards."""
    wrappers = [connections.create_connection(alias) for _ in range(2)]
    try:
        yield wrappers
    finally:
        for w in wrappers:
            w.close()
        del connections[alias]


def _both_parked(alias: str, first, second) -> None:
    """Both wrappers hold a connection at once (two sessions), then both park it, *second*'s last."""
    connections[alias] = first
    first.ensure_connection()
    connections[alias] = second
    second.ensure_connection()
    first.close_if_unusable_or_obsolete()
    second.close_if_unusable_or_obsolete()


def _remembered(alias: str, wrapper) -> tuple:
    """The alias's pool, and the connection *wrapper* parked last (it remembers it) with its lease."""
    from pool_core.registry import get_existing

    pool = get_existing(alias)
    assert pool is not None and wrapper._pool_soft is not None
    _, ref, lease = wrapper._pool_soft
    return pool, ref(), lease


@pytest.mark.requires("short_reconnect")
def test_each_wrapper_takes_back_the_connection_it_parked(engine):
    """With two connections parked, each wrapper's next request gets its own
    back (HikariCP's thread-local bag), not the one parked last; every time."""
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60}, CONN_MAX_AGE=0)
    with _two_wrappers(alias) as (first, second):
        _both_parked(alias, first, second)
        assert first._pool_soft is not None and second._pool_soft is not None
        assert first._pool_soft[1]() is not second._pool_soft[1]()
        mine = {_request(engine, alias, w): w for w in (first, second)}
        assert len(mine) == 2
        for _ in range(3):
            for backend, wrapper in mine.items():
                assert _request(engine, alias, wrapper) == backend
        assert pool_core.stats(alias)["connections_created"] == 2


@pytest.mark.requires("short_reconnect")
def test_a_wrapper_never_takes_back_a_connection_another_one_holds(engine):
    """The connection a wrapper parked can be taken by another wrapper meanwhile
    (it is an idle pooled connection like any other); the first one then gets
    another connection, never the one in use."""
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60}, CONN_MAX_AGE=0)
    with _two_wrappers(alias) as (first, second):
        parked = _request(engine, alias, first)
        connections[alias] = second
        with transaction.atomic(using=alias):  # held till the block ends, in either CHECKOUT mode
            assert engine.backend_id(alias) == parked  # the only parked one: taken by the other wrapper
            connections[alias] = first
            other = engine.backend_id(alias)
            assert other != parked
            first.close_if_unusable_or_obsolete()
            connections[alias] = second  # the block ends on the wrapper it began on
        second.close_if_unusable_or_obsolete()
        s = pool_core.stats(alias)
        assert (s["connections_created"], s["connections_idle"], s["connections_checked_out"]) == (2, 2, 0)


@pytest.mark.requires("short_reconnect")
def test_a_connection_someone_else_had_meanwhile_is_adopted_again(engine):
    """A parked connection another wrapper took and parked again in between is
    not the session this wrapper left: it goes through the checkout's full
    checks (pool_adopt_connection() runs); with nobody in between it does not."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60}, CONN_MAX_AGE=0)
    with _two_wrappers(alias) as (first, second):
        adopted: list[int] = []
        adopt = first.pool_adopt_connection
        first.pool_adopt_connection = lambda conn: (adopted.append(1), adopt(conn))[1]
        backend = _request(engine, alias, first)
        assert _request(engine, alias, second) == backend  # POOL_SIZE 1: the same session, in between
        del adopted[:]
        assert _request(engine, alias, first) == backend
        assert adopted == [1]  # someone else had it: adopted as any parked connection
        assert _request(engine, alias, first) == backend
        assert adopted == [1]  # its own, untouched since: taken back as it was left
        assert pool_core.stats(alias)["connections_created"] == 1


@pytest.mark.requires("short_reconnect")
def test_own_connection_with_autocommit_left_off_takes_the_full_connect(engine):
    """The connection a wrapper takes back with autocommit off on the driver is
    the one Django's full connect() then sets up; no other parked connection is
    taken beside it (one would stay checked out for good)."""
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60}, CONN_MAX_AGE=0)
    with _two_wrappers(alias) as (first, second):
        connections[alias] = first
        with transaction.atomic(using=alias):  # held till the block ends, in either CHECKOUT mode
            own = engine.backend_id(alias)
            connections[alias] = second
            with transaction.atomic(using=alias):  # a second session meanwhile
                engine.backend_id(alias)
            second.close_if_unusable_or_obsolete()
            connections[alias] = first  # the block ends on the wrapper it began on
        first.close_if_unusable_or_obsolete()
        assert pool_core.stats(alias)["connections_idle"] == 2
        connections[alias] = first
        first.ensure_connection()
        first.set_autocommit(False)
        first.close()  # parked with autocommit off on the driver, and remembered
        assert first._pool_soft is not None
        assert engine.backend_id(alias) == own
        assert first._pool_pending is None
        assert first.get_autocommit() is True
        if first.connection is not None:  # (CHECKOUT="transaction" gave it back after the statement)
            assert first.pool_driver_autocommit(first.connection) is True
        first.close_if_unusable_or_obsolete()
        s = pool_core.stats(alias)
        assert (s["connections_created"], s["connections_idle"], s["connections_checked_out"]) == (2, 2, 0)


@pytest.mark.requires("short_reconnect")
def test_a_reclaim_that_finds_another_lease_leaves_the_parked_connections_alone(engine):
    """A wrapper whose connection someone else had since (its lease is another
    one) does not take it off the parked list only to put it back: the list
    keeps its order (the one parked last is still handed out next) and the
    connection its idle time (PRE_PING_IDLE counts from its real last use)."""
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60}, CONN_MAX_AGE=0)
    with _two_wrappers(alias) as (first, second):
        _both_parked(alias, first, second)
        pool, mine, lease = _remembered(alias, first)
        parked = list(pool._parked)
        assert parked[0] is mine and len(parked) == 2
        last_used = [p.info["last_used"] for p in parked]
        assert pool.reclaim(mine, lease + 10**6) is None  # another lease: someone had it since
        assert len(pool._parked) == 2
        assert [p is q for p, q in zip(pool._parked, parked, strict=True)] == [True, True]
        assert [p.info["last_used"] for p in pool._parked] == last_used
        assert pool.reclaim(mine, lease) is mine  # its own lease: taken back
        assert list(pool._parked) == [parked[1]]
        pool.return_unused(mine)


@pytest.mark.requires("short_reconnect")
def test_a_reclaim_whose_connection_is_taken_between_look_and_pop_takes_nothing_else(engine):
    """reclaim() looks at the last parked connection, then takes it. Another
    checkout that takes that very connection in between (a thread switch
    there) must not make reclaim() take the connection parked before it
    instead, nor park again the one the other checkout now holds: one would
    be lost with its slot, the other handed to two threads at once."""
    import inspect
    import sys

    from pool_core.pool import AliasPool

    lines, first = inspect.getsourcelines(AliasPool.reclaim)
    pop_line = first + next(i for i, text in enumerate(lines) if "parked.pop()" in text)
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60}, CONN_MAX_AGE=0)
    with _two_wrappers(alias) as (first_wrapper, second_wrapper):
        _both_parked(alias, first_wrapper, second_wrapper)
        pool, mine, lease = _remembered(alias, second_wrapper)
        other = pool._parked[0]
        assert list(pool._parked) == [other, mine]
        taken: list = []

        def switch_at_the_pop(frame, event, arg):
            if event == "line" and frame.f_lineno == pop_line and not taken:
                taken.append(pool.checkout_parked())  # the other thread's checkout, right there
            return switch_at_the_pop

        def trace(frame, event, arg):
            return switch_at_the_pop if frame.f_code is AliasPool.reclaim.__code__ else None

        previous = sys.gettrace()
        sys.settrace(trace)
        try:
            got = pool.reclaim(mine, lease)
        finally:
            sys.settrace(previous)
        assert taken == [mine]  # the interleaving happened: the other checkout has it
        assert got is None
        assert list(pool._parked) == [other]  # still parked, not taken, and mine not parked again
        pool.return_unused(mine)
        s = pool_core.stats(alias)
        assert (s["connections_created"], s["connections_idle"], s["connections_checked_out"]) == (2, 2, 0)


@pytest.mark.requires("short_reconnect")
def test_the_connection_a_wrapper_remembers_does_not_keep_a_dead_threads_checkout(engine):
    """A wrapper remembers the connection it parked last, to take it back first.
    When another thread takes that connection and ends without returning it,
    the remembering must not keep it from the garbage collector: the pool gets
    it back (dead-thread reclamation), and a waiting checkout gets it."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 10}, CONN_MAX_AGE=0)
    mine = engine.backend_id(alias)
    connections[alias].close_if_unusable_or_obsolete()  # request end: parked, and remembered
    assert connections[alias]._pool_soft is not None
    took: list[int] = []
    holder = threading.Thread(target=lambda: took.append(engine.backend_id(alias)))  # never returns it
    holder.start()
    holder.join()
    assert took == [mine]
    w, got = engine.backend_id_thread(alias)
    w.start()
    w.join()
    assert got == [mine]  # the dead thread's connection, reclaimed; not a PoolTimeout
    assert pool_core.stats(alias)["checkout_timeouts"] == 0
