"""POOL_OPTIONS["CHECKOUT"] = "transaction": a connection only while a session is needed.

Every ENGINE with a native driver (psycopg 3, psycopg2, PyMySQL, mysqlclient).
Server session ids (pg_backend_pid() / CONNECTION_ID()) are the evidence.
"""

from __future__ import annotations

import threading

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
