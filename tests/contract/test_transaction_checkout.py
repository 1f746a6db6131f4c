"""POOL_OPTIONS["CHECKOUT"] = "transaction": a connection only while a session is needed.

Every ENGINE with a native driver (psycopg 3, psycopg2, PyMySQL, mysqlclient).
Server session ids (pg_backend_pid() / CONNECTION_ID()) are the evidence.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

import pool_core

TX = {"CHECKOUT": "transaction"}

pytestmark = pytest.mark.requires("transaction_checkout")


@pytest.fixture
def tx(engine):
    if "transaction_checkout" in engine.lacks:
        pytest.skip(f"inapplicable to {engine.engine}: {engine.lacks['transaction_checkout']}")
    return engine


def _sid(alias: str, engine) -> int:
    return engine.backend_id(alias)


def _pin_in_atomic(alias: str, tx, sids: list[int], holding: threading.Event, done: threading.Event) -> None:
    """In this thread: hold one session inside atomic() (noting its id in *sids*) until *done*."""
    try:
        with transaction.atomic(using=alias):
            sids.append(_sid(alias, tx))
            holding.set()
            done.wait(30)
    finally:
        connections[alias].close()


def _held(alias: str) -> int:
    s = pool_core.stats(alias)
    return 0 if s is None else int(s["connections_checked_out"])


def test_statement_in_autocommit_gives_the_connection_back(tx):
    alias = tx.make_alias({**TX, "POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert _held(alias) == 1  # an open cursor pins
        assert cursor.fetchone()[0] == 1
    assert conn.connection is None
    assert _held(alias) == 0
    # The next statement checks one out again (the only one: same session).
    first = _sid(alias, tx)
    assert _sid(alias, tx) == first
    assert pool_core.stats(alias)["connections_created"] == 1


def test_cursor_dropped_without_close_stops_pinning(tx):
    """A cursor user code drops without closing it pins only while it lives:
    once it is collected, the next release point (here another cursor's
    close) gives the connection back."""
    import gc

    alias = tx.make_alias({**TX, "POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    kept, dropped = conn.cursor(), conn.cursor()
    dropped.execute("SELECT 1")
    del dropped
    gc.collect()
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert _held(alias) == 1  # *kept* is still open
    kept.execute("SELECT 1")
    del kept
    gc.collect()
    assert _held(alias) == 1  # no release point since
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert conn.connection is None and _held(alias) == 0


def test_a_cursor_closed_on_another_thread_never_gives_the_owners_connection_back(tx):
    """A cursor closed on a thread other than its wrapper's (a garbage collection
    there finalising an abandoned iterator() whose generator closes it) must not
    give back the connection the owner thread is using: that thread may be
    between its checkout and its statement, and another would be handed the same
    session. The owner's next release point gives it back."""
    alias = tx.make_alias({**TX, "POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    cursor = conn.cursor()
    cursor.execute("SELECT 1")
    assert _held(alias) == 1
    closer = threading.Thread(target=cursor.close)
    closer.start()
    closer.join()
    assert conn.connection is not None and _held(alias) == 1  # still the owner's
    with conn.cursor() as other:
        other.execute("SELECT 1")  # the owner's release point
    assert conn.connection is None and _held(alias) == 0


def test_request_mode_is_unchanged(tx):
    alias = tx.make_alias({"CHECKOUT": "request", "POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    assert "set_autocommit" not in vars(conn)  # no per-instance overrides
    _sid(alias, tx)
    assert conn.connection is not None and _held(alias) == 1


def test_atomic_block_pins_one_session_until_it_ends(tx):
    alias = tx.make_alias({**TX, "POOL_SIZE": 2, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    committed = []
    with transaction.atomic(using=alias):
        first = _sid(alias, tx)
        assert conn.connection is not None and _held(alias) == 1
        with transaction.atomic(using=alias):  # a savepoint
            assert _sid(alias, tx) == first
        transaction.on_commit(lambda: committed.append(_sid(alias, tx)), using=alias)
        assert _sid(alias, tx) == first
    assert committed and conn.connection is None and _held(alias) == 0


def test_rolled_back_atomic_block_gives_the_connection_back(tx):
    alias = tx.make_alias({**TX, "POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    with pytest.raises(ZeroDivisionError), transaction.atomic(using=alias):
        _sid(alias, tx)
        1 / 0  # noqa: B018
    assert conn.connection is None and _held(alias) == 0
    assert pool_core.stats(alias)["rollbacks_on_return"] == 0  # Django rolled back itself


@pytest.mark.parametrize("pin", ["cursor", "pinned", "thread_sharing", "autocommit_off", "constraints"])
def test_pins_keep_the_session(tx, pin):
    alias = tx.make_alias({**TX, "POOL_SIZE": 2, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    if pin == "cursor":
        cursor = conn.cursor()
        cursor.execute(tx.id_sql)
        first = int(cursor.fetchone()[0])
        assert _sid(alias, tx) == first
        assert _held(alias) == 1
        cursor.close()
    elif pin == "pinned":
        with pool_core.pinned(alias) as db:
            assert db is conn and conn.connection is not None
            first = _sid(alias, tx)
            assert _sid(alias, tx) == first and _held(alias) == 1
    elif pin == "thread_sharing":
        conn.inc_thread_sharing()
        try:
            first = _sid(alias, tx)
            assert _sid(alias, tx) == first and _held(alias) == 1
        finally:
            conn.dec_thread_sharing()
        assert _held(alias) == 1  # released at the next release point
        _sid(alias, tx)
    elif pin == "autocommit_off":
        conn.set_autocommit(False)
        first = _sid(alias, tx)
        assert _sid(alias, tx) == first and _held(alias) == 1
        conn.rollback()
        conn.set_autocommit(True)
    else:
        pins = conn.features.supports_foreign_keys and tx.vendor == "mysql"  # a session SET there
        with conn.constraint_checks_disabled():
            first = _sid(alias, tx)
            assert (_sid(alias, tx) == first and _held(alias) == 1) if pins else _held(alias) == 0
    assert conn.connection is None and _held(alias) == 0


def test_server_side_cursor_iterator_pins_until_exhausted(tx):
    from tests.testapp.models import Note  # noqa: PLC0415

    alias = tx.make_alias({**TX, "POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    Note.objects.using(alias).bulk_create([Note(text=f"ssc-{i}") for i in range(5)])
    try:
        names = []
        for item in Note.objects.using(alias).filter(text__startswith="ssc-").order_by("pk").iterator(chunk_size=2):
            names.append(item.text)
            assert _held(alias) == 1
        assert len(names) == 5
        assert _held(alias) == 0
    finally:
        Note.objects.using(alias).filter(text__startswith="ssc-").delete()


def test_unsupported_engine_is_refused(tx):
    from django.db import connections as handler

    base = type(handler[tx.alias])

    class Wrapper(base):  # type: ignore[misc,valid-type]
        pool_supports_transaction_checkout = False  # e.g. the JDBC/ODBC bridges, Oracle

    settings = {**handler[tx.alias].settings_dict, "POOL_OPTIONS": TX}
    with pytest.raises(ImproperlyConfigured, match=r"DATABASES\['other'\]: POOL_OPTIONS\['CHECKOUT'\]"):
        Wrapper(settings, "other")


def test_transactions_never_span_or_share_sessions_under_64_threads(tx):
    """64 threads over 8 connections: every transaction on one session, never handed out mid-transaction."""
    alias = tx.make_alias({**TX, "POOL_SIZE": 8, "MAX_OVERFLOW": 0, "TIMEOUT": 60})
    threads_n, rounds = 64, 4
    in_tx: dict[int, int] = {}  # server session -> thread inside a transaction on it
    lock = threading.Lock()
    violations: list[str] = []
    errors: list[BaseException] = []
    sessions: set[int] = set()
    start = threading.Barrier(threads_n)

    def statement(me: int) -> int:
        sid = _sid(alias, tx)
        with lock:
            sessions.add(sid)
            owner = in_tx.get(sid)
            if owner is not None and owner != me:
                violations.append(f"thread {me} ran on session {sid} inside thread {owner}'s transaction")
        return sid

    def work(me: int) -> None:
        try:
            start.wait(60)
            for i in range(rounds):
                statement(me)
                with transaction.atomic(using=alias):
                    sid = statement(me)
                    with lock:
                        in_tx[sid] = me
                    threading.Event().wait(0.001 * (me % 3))  # a wait that lets others run
                    for _ in range(2):
                        if statement(me) != sid:
                            violations.append(f"thread {me}: a transaction spanned two sessions")
                    with lock:
                        del in_tx[sid]
                if i % 2:
                    with connections[alias].cursor() as cursor:
                        cursor.execute("SELECT 1")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:3]
    assert not violations, violations[:5]
    assert 1 <= len(sessions) <= 8
    s = pool_core.stats(alias)
    assert s["connections_created"] <= 8 and s["connections_checked_out"] == 0
    assert s["rollbacks_on_return"] == 0


def test_waiting_without_the_connection_frees_it_for_others(tx):
    """32 threads, 4 connections: SELECT, all wait for each other, SELECT.

    In request mode this cannot finish (4 threads would hold the 4
    connections while waiting for 28 that cannot get one); in transaction
    mode nobody holds a connection while waiting.
    """
    alias = tx.make_alias({**TX, "POOL_SIZE": 4, "MAX_OVERFLOW": 0, "TIMEOUT": 60})
    threads_n = 32
    middle = threading.Barrier(threads_n)
    errors: list[BaseException] = []
    sessions: set[int] = set()
    lock = threading.Lock()

    def work() -> None:
        try:
            a = _sid(alias, tx)
            middle.wait(60)
            b = _sid(alias, tx)
            with lock:
                sessions.update((a, b))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=work) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:3]
    assert 1 <= len(sessions) <= 4
    s = pool_core.stats(alias)
    assert s["connections_created"] <= 4 and s["checkout_timeouts"] == 0


def _wait_for(predicate, timeout=15.0, what="condition"):
    """Poll *predicate* until true; fail after *timeout* seconds (no sleep-and-hope)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def test_given_back_connection_goes_straight_to_the_waiter(tx):
    """A waiting checkout gets the returned connection directly, not through the queue's checkin."""
    from sqlalchemy import event

    alias = tx.make_alias({**TX, "POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 30})
    holding, done = threading.Event(), threading.Event()
    got: list[int] = []
    errors: list[BaseException] = []

    def holder() -> None:
        try:
            with transaction.atomic(using=alias):
                got.append(_sid(alias, tx))
                holding.set()
                done.wait(30)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connections[alias].close()

    def waiter() -> None:
        try:
            got.append(_sid(alias, tx))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connections[alias].close()

    t1 = threading.Thread(target=holder)
    t1.start()
    assert holding.wait(30)
    pool = pool_core.registry.get_existing(alias)
    checkins: list[object] = []
    event.listen(pool._pool, "checkin", lambda *a: checkins.append(a))
    t2 = threading.Thread(target=waiter)
    t2.start()
    _wait_for(lambda: pool_core.stats(alias)["threads_waiting"] == 1, what="the waiter to queue")
    done.set()
    t1.join(30)
    t2.join(30)
    assert not errors, errors
    assert len(got) == 2 and got[0] == got[1]  # the one session, handed over
    assert checkins == []  # no checkin/checkout through SQLAlchemy's queue in between
    s = pool_core.stats(alias)
    assert s["connections_created"] == 1 and s["checkout_timeouts"] == 0


def test_thread_dying_pinned_inside_atomic_is_reclaimed_and_rolled_back(tx):
    """A thread that ends inside atomic() (its session pinned) does not starve the pool; its
    connection is closed (no round trip in a garbage collection) and the server rolls back."""
    from tests.testapp.models import Note

    alias = tx.make_alias({**TX, "POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 30})
    started: list[int] = []

    def worker() -> None:
        _sid(alias, tx)  # a lease taken and given back first
        atomic = transaction.atomic(using=alias)
        atomic.__enter__()  # never exited: the thread dies pinned inside a transaction
        Note.objects.using(alias).create(text="tx mode: from a dead thread")
        started.append(_sid(alias, tx))

    t = threading.Thread(target=worker, name="doomed-tx-worker")
    t.start()
    t.join(30)
    assert started and not t.is_alive()
    assert _held(alias) == 1  # still pinned by the dead thread
    # The next statement (another thread's lease) reclaims it: closed, a new one opened.
    assert _sid(alias, tx) != started[0]
    s = pool_core.stats(alias)
    assert s["connections_reclaimed"] == 1
    assert (s["rollbacks_on_return"], s["connections_invalidated"], s["connections_created"]) == (0, 1, 2)
    assert s["checkout_timeouts"] == 0
    assert tx.wait_session_gone(started[0])
    assert not Note.objects.using(alias).filter(text="tx mode: from a dead thread").exists()
    assert _held(alias) == 0


def _child_leases(engine, alias, queue) -> None:
    try:
        conn = connections[alias]
        dropped = conn.connection is None and not conn.in_atomic_block
        ids = [engine.backend_id(alias), engine.backend_id(alias)]
        with transaction.atomic(using=alias):
            ids.append(engine.backend_id(alias))
        other: list[int] = []
        t = threading.Thread(target=lambda: other.append(engine.backend_id(alias)))
        t.start()
        t.join(30)
        queue.put(("ok", ids + other, dropped, pool_core.stats(alias)["pid"] == os.getpid()))
    except BaseException as e:  # noqa: BLE001
        queue.put(("error", repr(e), None, None))


@pytest.mark.parametrize("pinned_at_fork", [False, True])
def test_forked_child_never_uses_the_parents_sessions(tx, pinned_at_fork):
    """After fork the child leases its own sessions, whether the parent was pinned or released."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    alias = tx.make_alias({**TX, "POOL_SIZE": 2, "MAX_OVERFLOW": 0})
    parked = _sid(alias, tx)  # given back: parked in the parent's pool, wrapper released
    assert connections[alias].connection is None
    parent_ids = {parked}
    queue = ctx.Queue()
    with transaction.atomic(using=alias) if pinned_at_fork else contextlib.nullcontext():
        if pinned_at_fork:
            parent_ids.add(_sid(alias, tx))  # this thread's lease is pinned at fork time
        else:
            assert connections[alias].connection is None  # released at fork time
        proc = ctx.Process(target=_child_leases, args=(tx, alias, queue))
        proc.start()
        status, ids, dropped, own_pool = queue.get(timeout=60)
        proc.join(60)
        assert proc.exitcode == 0
        assert status == "ok", ids
        assert dropped, "the child kept the parent's leased connection"
        assert own_pool
        assert not (set(ids) & parent_ids), (ids, parent_ids)
        if pinned_at_fork:
            assert _sid(alias, tx) in parent_ids  # the parent's pinned session still works
    alive = tx.server_sessions()
    assert parked in alive
    assert _sid(alias, tx) in parent_ids


def test_released_wrapper_gets_a_new_connection_set_up_by_djangos_connect(tx):
    """Taking a connection again when only a new one is free: Django's set-up runs on it, none leaks."""
    from django.db.backends.signals import connection_created

    alias = tx.make_alias({**TX, "POOL_SIZE": 2, "MAX_OVERFLOW": 0, "TIMEOUT": 30})
    conn = connections[alias]
    created: list[object] = []

    def receiver(sender, connection, **kwargs):
        if connection is conn:
            created.append(connection.connection)

    connection_created.connect(receiver)
    holding, done = threading.Event(), threading.Event()
    other: list[int] = []

    try:
        first = _sid(alias, tx)  # the wrapper gives it back: parked
        assert conn.connection is None and len(created) == 1
        t = threading.Thread(target=_pin_in_atomic, args=(alias, tx, other, holding, done))
        t.start()
        assert holding.wait(30)
        assert other == [first]  # the other thread took the parked connection
        second = _sid(alias, tx)  # only a new connection is free
        assert second != first
        assert len(created) == 2 and created[1] is not None
        if tx.vendor == "postgresql":
            with conn.cursor() as cursor:  # Django's init_connection_state() ran on it
                cursor.execute("SHOW TIME ZONE")
                assert cursor.fetchone()[0] == conn.timezone_name
        done.set()
        t.join(30)
    finally:
        done.set()
        connection_created.disconnect(receiver)
    s = pool_core.stats(alias)
    assert s["connections_created"] == 2 and s["connections_checked_out"] == 0


def test_waiting_for_a_pinned_connection_times_out_then_recovers(tx):
    """A checkout waiting behind a pinned session gets Django's error after TIMEOUT; its place is gone."""
    from django.db import OperationalError

    alias = tx.make_alias({**TX, "POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 0.3})
    holding, done = threading.Event(), threading.Event()
    pinned_sid: list[int] = []

    t = threading.Thread(target=_pin_in_atomic, args=(alias, tx, pinned_sid, holding, done))
    t.start()
    try:
        assert holding.wait(30)
        with pytest.raises(OperationalError, match=repr(alias)):
            _sid(alias, tx)
        s = pool_core.stats(alias)
        assert s["checkout_timeouts"] == 1 and s["threads_waiting"] == 0
    finally:
        done.set()
        t.join(30)
    assert _sid(alias, tx) == pinned_sid[0]  # the slot went back, nobody stale in the queue
    assert _held(alias) == 0
