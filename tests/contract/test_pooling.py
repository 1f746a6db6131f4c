"""The pooling contract every pooled ENGINE must honour, against a real server."""

from __future__ import annotations

import logging
import threading

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections, transaction
from django.db.utils import OperationalError

import pool_core
from pool_core import PoolTimeout


def _hold(alias: str, holding: threading.Event, release: threading.Event, ids: list) -> None:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
        ids.append(id(connections[alias].connection))
        holding.set()
        release.wait(30)
    finally:
        connections[alias].close()


def test_connection_is_reused_after_close(engine):
    """close() returns the physical connection; the next checkout gets it back."""
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0})
    first = engine.backend_id(alias)
    connections[alias].close()
    assert connections[alias].connection is None
    second = engine.backend_id(alias)
    connections[alias].close()
    assert first == second
    s = pool_core.stats(alias)
    assert s["connections_created"] == 1
    assert s["checkouts"] == 2
    assert s["connections_idle"] == 1 and s["connections_checked_out"] == 0


def test_request_cycle_returns_connection(engine):
    """request_finished (and close_old_connections) puts the connection back."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    request_started.send(sender=None)
    engine.backend_id(alias)
    assert pool_core.stats(alias)["connections_checked_out"] == 1
    request_finished.send(sender=None)
    assert connections[alias].connection is None
    assert pool_core.stats(alias)["connections_checked_out"] == 0
    engine.backend_id(alias)
    close_old_connections()
    assert pool_core.stats(alias)["connections_checked_out"] == 0


def test_named_parameters(engine):
    """Raw SQL with %(name)s and a dict works through the cursor wrapper."""
    alias = engine.make_alias()
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT %(a)s + %(b)s, %(a)s", {"a": 40, "b": 2})
        assert tuple(int(x) for x in cursor.fetchone()) == (42, 40)
        cursor.execute("SELECT %s * %s", [6, 7])
        assert int(cursor.fetchone()[0]) == 42


def test_orm_round_trip(engine):
    from tests.testapp.models import Note

    alias = engine.make_alias()
    Note.objects.using(alias).create(text="orm", n=7)
    connections[alias].close()
    assert Note.objects.using(alias).filter(text="orm").values_list("n", flat=True).get() == 7
    Note.objects.using(alias).filter(text="orm").delete()


@pytest.mark.parametrize("size,overflow", [(3, 0), (2, 1)])
def test_bound_under_threads(engine, size, overflow):
    """Never more than POOL_SIZE + MAX_OVERFLOW server connections, whatever the threads."""
    alias = engine.make_alias({"POOL_SIZE": size, "MAX_OVERFLOW": overflow, "TIMEOUT": 30})
    seen: set[int] = set()
    peak = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def work() -> None:
        try:
            start.wait()
            for _ in range(15):
                bid = engine.backend_id(alias)
                with lock:
                    seen.add(bid)
                    peak[0] = max(peak[0], pool_core.stats(alias)["connections_open"])
                connections[alias].close()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connections[alias].close()

    server_peak = [0]
    stop = threading.Event()

    def monitor() -> None:  # the server's own count, sampled during the run
        while not stop.is_set():
            server_peak[0] = max(server_peak[0], len(engine.server_sessions()))

    threads = [threading.Thread(target=work) for _ in range(12)]
    m = threading.Thread(target=monitor)
    m.start()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        m.join()
    assert errors == []
    s = pool_core.stats(alias)
    if overflow == 0:
        # The server's own count. Only without overflow: an overflow connection
        # is closed on return, and the server removes a closed session
        # asynchronously, so its count may briefly include one that is gone.
        assert server_peak[0] <= 3, server_peak
    assert peak[0] <= 3
    assert s["checkouts"] == 12 * 15
    assert s["connections_checked_out"] == 0
    # Server's view: the pool's connections, and no more, are open.
    assert len(engine.server_sessions()) <= 3


def test_exhausted_pool_times_out_with_a_clear_django_error(engine, caplog):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 0.2})
    caplog.set_level(logging.WARNING, logger="pool_core")
    holding, release, ids = threading.Event(), threading.Event(), []
    t = threading.Thread(target=_hold, args=(alias, holding, release, ids))
    t.start()
    try:
        assert holding.wait(30)
        with pytest.raises(PoolTimeout) as info:
            connections[alias].ensure_connection()
    finally:
        release.set()
        t.join()
    err = info.value
    assert isinstance(err, OperationalError)
    message = str(err)
    assert repr(alias) in message
    assert "POOL_SIZE=1" in message and "MAX_OVERFLOW=0" in message
    assert "1 connections checked out" in message
    assert pool_core.stats(alias)["checkout_timeouts"] == 1
    warnings = [r for r in caplog.records if r.name == "pool_core" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "timed out" in warnings[0].getMessage()
    # Once the holder returned its connection, checkout works again.
    engine.backend_id(alias)


def test_transaction_left_open_is_rolled_back_on_return(engine):
    from tests.testapp.models import Note

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    conn.set_autocommit(False)
    Note.objects.using(alias).create(text="uncommitted")
    conn.close()
    assert conn.connection is None
    assert pool_core.stats(alias)["rollbacks_on_return"] == 1
    assert not Note.objects.using(alias).filter(text="uncommitted").exists()
    assert conn.get_autocommit() is True
    conn.close()


@pytest.mark.requires("transaction_checkout")  # the driver reports a transaction opened by raw SQL
def test_raw_begin_left_open_is_rolled_back_on_return(engine):
    """A transaction opened with raw SQL in autocommit (Django cannot see it): psycopg2's
    rollback() does nothing in autocommit, so the next checkout ran inside it."""
    from pool_core.hooks import TransactionState
    from tests.testapp.models import Note

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    with pool_core.pinned(alias):  # CHECKOUT="transaction" would give it back when the cursor closes
        with conn.cursor() as cursor:
            cursor.execute("BEGIN")
        if conn.pool_transaction_state(conn.connection) != TransactionState.IN_TRANSACTION:
            pytest.skip("the driver does not report a raw BEGIN (mysqlclient; docs/behaviour.md)")
        Note.objects.using(alias).create(text="raw-begin")
    conn.close()
    assert conn.connection is None
    assert pool_core.stats(alias)["rollbacks_on_return"] == 1
    assert not Note.objects.using(alias).filter(text="raw-begin").exists()
    conn.close()


def test_close_inside_atomic_does_not_leak_the_transaction(engine):
    from tests.testapp.models import Note

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    with pytest.raises(Exception):
        with transaction.atomic(using=alias):
            Note.objects.using(alias).create(text="inside-atomic")
            conn.close()
            # The wrapper no longer owns a connection: it cannot write to
            # the one it returned, which someone else may hold now.
            assert conn.connection is None
            raise RuntimeError("leave the block")
    conn.close()
    assert not Note.objects.using(alias).filter(text="inside-atomic").exists()


def test_connection_killed_while_idle_is_replaced(engine):
    """With PRE_PING_IDLE=0 every checkout validates: a killed idle connection is never handed out."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 0})
    victim = engine.backend_id(alias)
    connections[alias].close()
    engine.kill(victim)
    replacement = engine.backend_id(alias)
    connections[alias].close()
    assert replacement != victim
    s = pool_core.stats(alias)
    assert s["pings_failed"] == 1
    assert s["connections_created"] == 2


@pytest.mark.requires("operational_error_on_dead_connection")
def test_connection_killed_in_flight_raises_django_error_then_recovers(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    victim = engine.backend_id(alias)
    engine.kill(victim)
    with pytest.raises(OperationalError) as info:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
    assert type(info.value).__module__ == "django.db.utils"
    close_old_connections()
    connections[alias].close()
    replacement = engine.backend_id(alias)
    connections[alias].close()
    assert replacement != victim
    assert engine.wait_session_gone(victim)


def test_a_killed_connection_fails_djangos_health_check_and_is_discarded(engine):
    """Django's is_usable() (after an error at a request's end, CONN_HEALTH_CHECKS) says no for
    a killed session, as the stock ENGINE does with psycopg and mysqlclient, and the pool
    discards the connection. PyMySQL's ping() reconnects by default: the session was swapped
    under the pool, whose record of the socket (QUERY_TIMEOUT shuts it down) then named a
    closed descriptor, which the next socket opened may reuse."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "QUERY_TIMEOUT": 30})
    wrapper = connections[alias]
    victim = engine.backend_id(alias)
    engine.kill(victim)
    assert engine.wait_session_gone(victim)
    wrapper.errors_occurred = True  # what a failed query leaves for the request's end
    assert wrapper.is_usable() is False
    wrapper.close_if_unusable_or_obsolete()
    assert wrapper.connection is None
    s = pool_core.stats(alias)
    assert s["connections_invalidated"] == 1
    assert (s["connections_open"], s["connections_idle"]) == (0, 0)  # none left open
    replacement = engine.backend_id(alias)
    wrapper.close()
    assert replacement != victim
    assert pool_core.stats(alias)["connections_created"] == 2


def test_recycle_replaces_old_connections(engine):
    import time

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "RECYCLE": 0.05})
    first = engine.backend_id(alias)
    connections[alias].close()
    time.sleep(0.1)  # strictly longer than RECYCLE: the connection is older than allowed
    second = engine.backend_id(alias)
    connections[alias].close()
    assert first != second
    assert engine.wait_session_gone(first)
    s = pool_core.stats(alias)
    # Every connection but the current one was recycled (on a slow machine a
    # checkout inside Django's connect() may already find one over RECYCLE).
    assert s["connections_recycled"] >= 1 and s["connections_invalidated"] == 0
    assert s["connections_created"] == s["connections_recycled"] + 1


def test_several_aliases_have_their_own_pools(engine):
    a = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    b = engine.make_alias({"POOL_SIZE": 3, "MAX_OVERFLOW": 2})
    ida, idb = engine.backend_id(a), engine.backend_id(b)
    assert ida != idb
    sa, sb = pool_core.stats(a), pool_core.stats(b)
    assert (sa["pool_size"], sa["max_overflow"]) == (1, 0)
    assert (sb["pool_size"], sb["max_overflow"]) == (3, 2)
    assert sa["connections_checked_out"] == 1 and sb["connections_checked_out"] == 1


def test_setup_defaults_apply_to_new_pools(engine):
    pool_core.setup(pool_size=3, MAX_OVERFLOW=0)
    alias = engine.make_alias()
    engine.backend_id(alias)
    s = pool_core.stats(alias)
    assert (s["pool_size"], s["max_overflow"]) == (3, 0)


@pytest.mark.requires("connect_timeout_option")
def test_settings_change_gets_a_new_pool(engine):
    """The test runner switches NAME in place: never hand out the old database's connections."""
    alias = engine.make_alias({"POOL_SIZE": 2})
    old = engine.backend_id(alias)
    connections[alias].close()
    connections[alias].settings_dict["OPTIONS"] = {**connections[alias].settings_dict["OPTIONS"],
                                                    "connect_timeout": 7}
    new = engine.backend_id(alias)
    connections[alias].close()
    assert new != old
    assert engine.wait_session_gone(old), f"the old pool's session {old} is still open"


def test_waiters_are_served_in_arrival_order(engine):
    """A returned connection goes to the longest waiter, not to whoever asks next."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 60})
    engine.backend_id(alias)  # this thread holds the only connection
    order: list[int] = []
    done = threading.Event()

    def waiter(i: int) -> None:
        try:
            engine.backend_id(alias)
            order.append(i)
        finally:
            connections[alias].close()
            if len(order) == 5:
                done.set()

    threads = []
    try:
        for i in range(5):
            t = threading.Thread(target=waiter, args=(i,))
            t.start()
            threads.append(t)
            # Start the next one only once this one is queued.
            for _ in range(6000):
                if pool_core.stats(alias)["threads_waiting"] == i + 1:
                    break
                threading.Event().wait(0.005)
            assert pool_core.stats(alias)["threads_waiting"] == i + 1
    finally:
        connections[alias].close()  # the waiters get the connection in turn
        for t in threads:
            t.join(60)
    assert order == [0, 1, 2, 3, 4]


@pytest.mark.requires("visible_socket")
def test_connection_killed_while_idle_is_replaced_within_pre_ping_idle(engine):
    """A connection killed seconds (not minutes) after its return is still never handed out.

    Default PRE_PING_IDLE: the connection is too fresh to be pinged by age,
    but the server's goodbye is waiting on its socket, so the pool pings it.
    """
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 3600})
    victim = engine.backend_id(alias)
    connections[alias].close()
    engine.kill(victim)
    if engine.vendor == "mysql":  # KILL returns before the socket is closed
        for _ in range(500):
            if victim not in engine.server_sessions():
                break
            threading.Event().wait(0.01)
    replacement = engine.backend_id(alias)
    connections[alias].close()
    assert replacement != victim
    s = pool_core.stats(alias)
    assert s["pings"] == 1 and s["pings_failed"] == 1
    # A connection nobody touched is not pinged.
    engine.backend_id(alias)
    connections[alias].close()
    assert pool_core.stats(alias)["pings"] == 1


def test_a_checkout_whose_pings_keep_failing_raises_djangos_error(engine):
    """SQLAlchemy gives a checkout two tries when the pool's ping fails (the old
    connection, then a new one), then raises its own InvalidRequestError: a
    database that accepts connections but fails every ping (overloaded, a
    PgBouncer whose server is down) must give Django's OperationalError naming
    the alias instead."""
    from pool_core.registry import get_existing

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 0})
    engine.backend_id(alias)
    connections[alias].close()
    pool = get_existing(alias)
    pool._ping = lambda dbapi_connection: False
    with pytest.raises(OperationalError) as info:
        connections[alias].ensure_connection()
    assert repr(alias) in str(info.value)
    assert pool_core.stats(alias)["connections_checked_out"] == 0
    del pool._ping  # the database answers again: the next checkout works
    engine.backend_id(alias)
    connections[alias].close()
