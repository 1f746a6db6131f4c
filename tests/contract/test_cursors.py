"""An unfinished QuerySet.iterator() does not outlive its request (issue 12, item 2).

Request 1 reads part of an ``.iterator()`` (on PostgreSQL a named,
server-side cursor declared WITH HOLD in autocommit), keeps the generator and
ends. With Django's stock ENGINE the request's connection is closed: the
cursor dies with the session and the old generator fails on its next fetch.
Pooled, the session lives on in the pool: the cursor must not stay open on it
for the next checkout, and the old generator must not fetch over a session
another request now owns; it fails as the stock ENGINE's does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import connections, transaction

import pool_core
from tests._round_trip_proxy import RoundTripProxy
from tests.testapp.models import Note

STOCK_ENGINE = {"postgresql": "django.db.backends.postgresql", "mysql": "django.db.backends.mysql"}
TEXT = "cursor-test"
ROWS = 10


@pytest.fixture
def notes(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    for i in range(ROWS):  # not bulk_create(): PostgreSQL's UNNEST arrays do not cross the bridges
        Note.objects.using(alias).create(text=TEXT, n=i)
    connections[alias].close()
    yield engine
    Note.objects.using(alias).filter(text=TEXT).delete()
    connections[alias].close()


def _stock_engine(engine: Any) -> str:
    """Django's own ENGINE for *engine*'s driver, to compare with; skips the test without one."""
    if engine.vendor not in STOCK_ENGINE or "stock_engine_comparison" in engine.lacks:
        pytest.skip("no stock Django ENGINE for this driver to compare with")
    return STOCK_ENGINE[engine.vendor]


def _values(alias: str) -> Any:
    return Note.objects.using(alias).filter(text=TEXT).order_by("n").values_list("n", flat=True)


def _unfinished_iterator(alias: str) -> Iterator[int]:
    """Request 1: read one row of an .iterator(), keep the generator, end the request."""
    request_started.send(sender=None)
    it = _values(alias).iterator(chunk_size=2)
    assert next(it) == 0
    request_finished.send(sender=None)
    return it


def _outcome(it: Iterator[int]) -> tuple[list[int], Any]:
    """What the rest of an old generator gives: its rows, and the error (class, message) it ends with."""
    rows: list[int] = []
    try:
        for n in it:
            rows.append(n)
    except Exception as e:
        return rows, (f"{type(e).__module__}.{type(e).__qualname__}", str(e))
    return rows, None


def _server_cursors(engine: Any, alias: str) -> list[str]:
    """The named cursors open on the session *alias* holds (PostgreSQL's pg_cursors)."""
    if engine.vendor != "postgresql":
        return []
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT name FROM pg_cursors WHERE name <> ''")  # pgJDBC: the query's own unnamed portal
        return [r[0] for r in cursor.fetchall()]


def _in_thread(fn: Callable[[], Any]) -> Any:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as e:  # re-raised in the test's thread
            result.append(e)
        finally:
            connections.close_all()

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert not t.is_alive()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def test_unfinished_iterator_is_gone_for_the_next_checkout(notes):
    """The next request, in another thread, gets the same session without the old cursor."""
    engine = notes
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    backend = engine.backend_id(alias)
    connections[alias].close()
    it = _unfinished_iterator(alias)

    def request_2() -> tuple[int, list[str], list[int]]:
        request_started.send(sender=None)
        try:
            return engine.backend_id(alias), _server_cursors(engine, alias), list(_values(alias))
        finally:
            request_finished.send(sender=None)

    assert _in_thread(request_2) == (backend, [], list(range(ROWS)))
    del it


def test_old_iterator_fails_as_with_the_stock_engine(notes):
    """The old generator's next fetch fails as Django's own ENGINE's does (class and message),
    without touching the session the next request holds."""
    engine = notes
    stock = engine.make_alias(None, ENGINE=_stock_engine(engine))
    expected = _outcome(_unfinished_iterator(stock))

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    it = _unfinished_iterator(alias)
    holding, release = threading.Event(), threading.Event()
    seen: list[Any] = []

    def request_2() -> None:
        # Holds the only connection, inside a transaction, while the old generator runs.
        with transaction.atomic(using=alias):
            Note.objects.using(alias).create(text=TEXT + "-2", n=-1)
            holding.set()
            assert release.wait(30)
            seen.append(_server_cursors(engine, alias))
            seen.append(Note.objects.using(alias).filter(text=TEXT + "-2").count())
        Note.objects.using(alias).filter(text=TEXT + "-2").delete()

    t = threading.Thread(target=lambda: (request_2(), connections.close_all()))
    t.start()
    try:
        assert holding.wait(30)
        got = _outcome(it)
    finally:
        release.set()
        t.join(60)
    assert seen == [[], 1]
    assert got[0] == expected[0]
    if engine.vendor == "postgresql":
        # The stock ENGINE's generator fails on its next fetch (the check is not vacuous):
        # psycopg 3 OperationalError "the connection is closed", psycopg2 InterfaceError
        # "connection already closed", as django.db.utils classes.
        assert expected[0] == [1] and expected[1][0].startswith("django.db.utils.")
        assert got[1] == expected[1]
    else:
        # MySQL's default cursors hold their rows client-side: the old generator reads the rest,
        # as with the stock ENGINE. There, mysqlclient then fails in the generator's clean-up
        # (cursor.close() on the closed connection, a raw MySQLdb error Django does not wrap);
        # pooled, the cursor no longer reaches the connection and the clean-up is silent.
        assert expected[0] == list(range(1, ROWS))
        assert got[1] is None


def _kept_cursor(alias: str) -> Any:
    """Request 1: run a statement on a plain cursor, keep the cursor (never closed), end the request."""
    request_started.send(sender=None)
    cursor = connections[alias].cursor()
    cursor.execute("SELECT 1")
    cursor.fetchall()
    request_finished.send(sender=None)
    return cursor


def _execute_outcome(cursor: Any, sql: str) -> Any:
    """The rows a statement on *cursor* gives, or the class of the error it raises."""
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    except Exception as e:
        return f"{type(e).__module__}.{type(e).__qualname__}"


def test_plain_cursor_kept_past_its_request_fails_as_with_the_stock_engine(notes):
    """A cursor kept past its request's end fails on its next statement, with Django's error
    for a closed connection, as with Django's own ENGINE (which closed the connection there):
    it never runs on the session the next request holds."""
    engine = notes
    stock = engine.make_alias(None, ENGINE=_stock_engine(engine))
    expected = _execute_outcome(_kept_cursor(stock), engine.id_sql)
    assert isinstance(expected, str) and expected.startswith("django.db.utils."), expected

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    cursor = _kept_cursor(alias)
    holding, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def request_2() -> None:
        # Holds the only connection, the one the kept cursor came from, while it is used.
        with transaction.atomic(using=alias):
            seen.append(engine.backend_id(alias))
            holding.set()
            assert release.wait(30)

    t = threading.Thread(target=lambda: (request_2(), connections.close_all()))
    t.start()
    try:
        assert holding.wait(30)
        got = _execute_outcome(cursor, engine.id_sql)
    finally:
        release.set()
        t.join(60)
    assert len(seen) == 1
    assert got == expected
    assert pool_core.stats(alias)["connections_created"] == 1  # the same connection served request 2


def test_new_iterator_with_the_same_cursor_name_works(notes):
    """A later request whose wrapper names its cursor as the old one did (a new thread
    that got the old thread's ident: `_django_curs_<ident>_sync_1`) reads normally."""
    engine = notes
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    it = _unfinished_iterator(alias)
    # A new wrapper in this thread: what a new thread with the same ident gets.
    delattr(connections._connections, alias)
    request_started.send(sender=None)
    try:
        assert list(_values(alias).iterator(chunk_size=2)) == list(range(ROWS))
        assert _server_cursors(engine, alias) == []
    finally:
        request_finished.send(sender=None)
    del it


def test_finished_iterator_leaves_nothing_to_clean_up(notes):
    """An .iterator() read to the end closes its own cursor: nothing is left for the return."""
    engine = notes
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    request_started.send(sender=None)
    assert list(_values(alias).iterator(chunk_size=3)) == list(range(ROWS))
    request_finished.send(sender=None)
    assert _server_cursors(engine, alias) == []
    connections[alias].close()
    assert pool_core.stats(alias)["connections_created"] == 1


# -- round trips -----------------------------------------------------------------


@pytest.fixture
def proxy(notes):
    p = RoundTripProxy(notes.server.host, notes.server.port)
    yield p
    connections.close_all()
    pool_core.dispose()
    p.close()


def _round_trips(proxy: RoundTripProxy, alias: str, cycle: Callable[[str, list[Any]], None], n: int = 4) -> int:
    kept: list[Any] = []  # unfinished generators stay alive: no close() at garbage collection
    cycle(alias, kept)  # open the connection and run Django's per-connection set-up
    cycle(alias, kept)
    proxy.reset()
    for _ in range(n):
        cycle(alias, kept)
    trips = proxy.round_trips
    kept.clear()
    connections[alias].close()
    return trips


def _finished_cycle(alias: str, kept: list[Any]) -> None:
    request_started.send(sender=None)
    assert list(_values(alias).iterator(chunk_size=4)) == list(range(ROWS))
    request_finished.send(sender=None)


def _unfinished_cycle(alias: str, kept: list[Any]) -> None:
    kept.append(_unfinished_iterator(alias))


def _aliases(engine: Any, proxy: RoundTripProxy) -> tuple[str, str]:
    stock = _stock_engine(engine)
    pooled = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60},
                               HOST="127.0.0.1", PORT=proxy.port)
    floor = engine.make_alias(None, ENGINE=stock, CONN_MAX_AGE=None,
                              HOST="127.0.0.1", PORT=proxy.port)
    return pooled, floor


@pytest.mark.requires("exact_round_trips")
def test_finished_iterator_costs_what_a_persistent_connection_costs(notes, proxy):
    """No round trip is added when the request left no server-side cursor open."""
    pooled, floor = _aliases(notes, proxy)
    floor_trips = _round_trips(proxy, floor, _finished_cycle)
    assert floor_trips >= 4  # the counter counts
    assert _round_trips(proxy, pooled, _finished_cycle) == floor_trips


@pytest.mark.requires("exact_round_trips")
def test_unfinished_iterator_costs_one_round_trip_on_return(notes, proxy):
    """PostgreSQL: one round trip on return closes what the request left open (none on MySQL,
    whose default cursors hold their rows client-side)."""
    pooled, floor = _aliases(notes, proxy)
    floor_trips = _round_trips(proxy, floor, _unfinished_cycle)
    extra = 1 if notes.vendor == "postgresql" else 0
    assert _round_trips(proxy, pooled, _unfinished_cycle) == floor_trips + 4 * extra


# -- MySQL unbuffered results ----------------------------------------------------


def test_unfinished_unbuffered_result_is_not_handed_to_the_next_checkout(mysql):
    """MySQL with OPTIONS cursorclass SSCursor: an unfinished iterator leaves rows on the wire.

    The connection is discarded on return (the stock ENGINE closes it too): the
    next request gets a clean session and its own results (unchanged code:
    mysqlclient fails with "Commands out of sync", PyMySQL reads the rest of
    the old result on the next request's time), and the old generator ends as
    the stock ENGINE's does instead of reading another request's wire.
    """
    import MySQLdb.cursors

    opts = {**mysql.settings()["OPTIONS"], "cursorclass": MySQLdb.cursors.SSCursor}
    alias = mysql.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0}, OPTIONS=opts)
    stock = mysql.make_alias(None, ENGINE=STOCK_ENGINE["mysql"], OPTIONS=opts)
    for i in range(ROWS):
        Note.objects.using(alias).create(text=TEXT, n=i)
    connections[alias].close()
    try:
        expected = _outcome(_unfinished_iterator(stock))
        it = _unfinished_iterator(alias)

        def request_2() -> tuple[list[int], list[tuple[int]]]:
            request_started.send(sender=None)
            try:
                with connections[alias].cursor() as cursor:
                    cursor.execute("SELECT 42")
                    answer = list(cursor.fetchall())
                return list(_values(alias)), answer
            finally:
                request_finished.send(sender=None)

        assert _in_thread(request_2) == (list(range(ROWS)), [(42,)])
        assert pool_core.stats(alias)["connections_created"] == 2  # the first one was discarded
        rows, error = _outcome(it)
        assert rows == expected[0] and rows != list(range(1, ROWS))
        assert error is not None and error[0] == expected[1][0]
    finally:
        Note.objects.using(alias).filter(text=TEXT).delete()
        connections[alias].close()
