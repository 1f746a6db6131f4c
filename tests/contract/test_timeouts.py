"""Fail-safe defaults: CONNECT_TIMEOUT, VALIDATION_TIMEOUT and QUERY_TIMEOUT against a frozen peer.

A frozen peer keeps TCP alive (its kernel acknowledges every byte) but never
answers: a stopped server process, a stalled disk. tests/_proxy.py's pause()
is exactly that for the connections it forwards. Keepalives and
tcp_user_timeout cannot end such a wait; only a client-side deadline can.
Time limits below are hang guards (pytest-timeout), never the assertion.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections, transaction
from django.db.utils import OperationalError

import pool_core
from pool_core import QueryTimeout
from pool_core.options import parse_options
from tests._proxy import Proxy
from tests.testapp.models import Note

_NO_SOCKET = ("the JDBC/ODBC driver owns its socket, so the pool cannot shut it down: bound queries and "
              "pings with the driver's own option (pgJDBC socketTimeout, ODBC query timeout; docs/network.md)")


def _needs_socket(engine) -> None:
    if "visible_socket" in engine.lacks:  # the JDBC/ODBC bridges and Oracle
        pytest.skip(f"inapplicable to {engine.engine}: {engine.lacks['visible_socket']}")


def _wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class _HousekeeperState:
    """*what*, then the alias's stats and the housekeeper thread's stack, read when the message is made."""

    def __init__(self, what: str, alias: str) -> None:
        self.what = what
        self.alias = alias

    def __format__(self, spec: str) -> str:
        import sys
        import traceback

        from pool_core import _housekeeper

        thread = _housekeeper._thread
        frame = sys._current_frames().get(thread.ident) if thread is not None and thread.ident else None
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(not running)"
        return f"{self.what}; stats {pool_core.stats(self.alias)}; housekeeper thread:\n{stack}"


@pytest.fixture
def proxy(engine):
    p = Proxy(engine.server.host, engine.server.port)
    yield p
    p.resume()
    connections.close_all()
    pool_core.dispose()
    p.close()


def test_defaults_are_finite():
    o = parse_options("default", None)
    assert (o.connect_timeout, o.validation_timeout, o.query_timeout) == (30.0, 5.0, None)
    o = parse_options("default", {"CONNECT_TIMEOUT": None, "VALIDATION_TIMEOUT": None, "QUERY_TIMEOUT": 2})
    assert (o.connect_timeout, o.validation_timeout, o.query_timeout) == (None, None, 2.0)


def test_default_connect_timeout_reaches_the_driver(engine, monkeypatch):
    """Without CONNECT_TIMEOUT in POOL_OPTIONS the driver still gets a 30 s connect timeout."""
    wrapper_class = type(connections[engine.alias])
    expected = wrapper_class.pool_connect_timeout_params({}, 30.0).get("connect_timeout")
    if expected is None:
        pytest.skip(f"{engine.engine} takes no connect timeout in its connect parameters")
    seen: list[dict] = []
    real = wrapper_class._pool_connect_physical

    def spy(self, conn_params):
        seen.append(dict(conn_params))
        return real(self, conn_params)

    monkeypatch.setattr(wrapper_class, "_pool_connect_physical", spy)
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    engine.backend_id(alias)  # a real connection, opened with those parameters
    connections[alias].close()
    assert [p.get("connect_timeout") for p in seen] == [30]
    assert expected == 30


def test_ping_against_a_frozen_peer_fails_and_the_connection_is_replaced(engine, proxy):
    """Default options: the pre-ping is bounded (VALIDATION_TIMEOUT=5), the connection replaced."""
    _needs_socket(engine)
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 0},
                              HOST="127.0.0.1", PORT=proxy.port)
    old = engine.backend_id(alias)
    connections[alias].close()
    proxy.pause()
    got: list[object] = []

    def checkout() -> None:
        try:
            got.append(engine.backend_id(alias))
        except Exception as e:  # reported through got
            got.append(e)
        finally:
            connections[alias].close()

    t = threading.Thread(target=checkout)
    t.start()
    try:
        _wait_until(lambda: pool_core.stats(alias)["pings_failed"] == 1, 60, "the ping to fail")
    finally:
        proxy.resume()  # the replacement connection waits in the proxy's backlog until now
    t.join(60)
    assert not t.is_alive()
    assert len(got) == 1 and isinstance(got[0], int), got
    assert got[0] != old
    s = pool_core.stats(alias)
    assert s["pings_failed"] == 1 and s["connections_invalidated"] >= 1
    assert engine.wait_session_gone(old)


@pytest.mark.timeout(120)
def test_a_keepalive_ping_against_a_frozen_peer_is_bounded_too(engine, proxy):
    """KEEPALIVE_TIME pings run on the housekeeper thread, the thread that shuts
    down the socket of a ping past VALIDATION_TIMEOUT: its own ping must be
    bounded all the same, or the thread would wait on a silent network (what
    keepalives are for) until TCP gives up, and every deadline with it."""
    _needs_socket(engine)
    alias = engine.make_alias(
        {"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "KEEPALIVE_TIME": 0.1, "VALIDATION_TIMEOUT": 1,
         "PRE_PING_IDLE": 3600},
        HOST="127.0.0.1", PORT=proxy.port,
    )
    old = engine.backend_id(alias)
    connections[alias].close()
    proxy.pause()
    try:
        _wait_until(lambda: pool_core.stats(alias)["pings_failed"] == 1, 60,
                    _HousekeeperState("the keepalive ping to fail", alias))
    finally:
        proxy.resume()
    s = pool_core.stats(alias)
    assert s["connections_open"] == 0  # the silent one was closed, not kept
    assert engine.wait_session_gone(old)


@pytest.mark.timeout(120)
def test_a_dead_threads_rollback_against_a_frozen_peer_is_bounded(engine, proxy):
    """A thread that ends inside a transaction leaves its connection to the garbage
    collector, whose finaliser rolls it back on whatever thread collects: a request's
    thread, or the housekeeper's (reclaim_orphans()). On a silent network that
    rollback must end after VALIDATION_TIMEOUT, not when TCP gives up, and the
    connection is discarded."""
    import gc

    from pool_core.registry import get_existing

    _needs_socket(engine)
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "VALIDATION_TIMEOUT": 1},
                              HOST="127.0.0.1", PORT=proxy.port)
    started: list[int] = []

    def worker() -> None:
        atomic = transaction.atomic(using=alias)
        atomic.__enter__()  # never exited: the thread ends inside a transaction
        Note.objects.using(alias).create(text="from a thread that ended")
        started.append(engine.backend_id(alias))

    gc.disable()  # no collection before the proxy pauses (it would roll back at once)
    reclaimer: threading.Thread | None = None
    try:
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert started and pool_core.stats(alias)["connections_checked_out"] == 1
        proxy.pause()
        pool = get_existing(alias)
        assert pool is not None
        reclaimer = threading.Thread(target=pool.reclaim_orphans)
        reclaimer.start()
        reclaimer.join(60)
        assert not reclaimer.is_alive(), "the finaliser's rollback waited on the silent network"
    finally:
        gc.enable()
        proxy.resume()
        if reclaimer is not None:
            reclaimer.join(60)
    s = pool_core.stats(alias)
    assert s["connections_reclaimed"] == 1
    assert (s["connections_invalidated"], s["rollbacks_on_return"]) == (1, 0)  # closed, not rolled back
    assert s["connections_open"] == 0
    assert engine.wait_session_gone(started[0])
    assert not Note.objects.using(alias).filter(text="from a thread that ended").exists()
    connections[alias].close()


@pytest.mark.timeout(120)
@pytest.mark.requires("operational_error_on_dead_connection")
def test_query_against_a_frozen_peer_fails_with_query_timeout_and_is_discarded(engine, proxy):
    _needs_socket(engine)
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "QUERY_TIMEOUT": 1},
                              HOST="127.0.0.1", PORT=proxy.port)
    old = engine.backend_id(alias)
    proxy.pause()
    with pytest.raises(QueryTimeout) as info:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
    proxy.resume()
    assert isinstance(info.value, OperationalError)
    message = str(info.value)
    assert repr(alias) in message and "QUERY_TIMEOUT=1" in message
    assert connections[alias].errors_occurred
    connections[alias].close()
    s = pool_core.stats(alias)
    assert s["queries_timed_out"] == 1
    assert s["connections_invalidated"] == 1  # discarded, not returned
    assert s["pings_failed"] == 0  # and no ping that would replace the pool's other connections
    new = engine.backend_id(alias)
    connections[alias].close()
    assert new != old
    assert engine.wait_session_gone(old)


@pytest.mark.timeout(120)
def test_commit_against_a_frozen_peer_fails_with_query_timeout(engine, proxy):
    _needs_socket(engine)
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "QUERY_TIMEOUT": 1},
                              HOST="127.0.0.1", PORT=proxy.port)
    old = engine.backend_id(alias)
    connections[alias].set_autocommit(False)
    Note.objects.using(alias).create(text="frozen-commit")
    proxy.pause()
    with pytest.raises(QueryTimeout, match="QUERY_TIMEOUT=1"):
        connections[alias].commit()
    proxy.resume()
    connections[alias].close()
    # Whether the COMMIT took effect is unknown to the client (it may reach the
    # server later); the connection is gone either way.
    assert pool_core.stats(alias)["queries_timed_out"] == 1
    new = engine.backend_id(alias)
    connections[alias].close()
    assert new != old


def test_fast_queries_are_unaffected_by_query_timeout(engine):
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "QUERY_TIMEOUT": 5})
    ids = set()
    for _ in range(20):
        with transaction.atomic(using=alias):
            ids.add(engine.backend_id(alias))
            Note.objects.using(alias).create(text="fast")
        connections[alias].close()
    assert len(ids) == 1  # the same connection, reused
    s = pool_core.stats(alias)
    assert s["queries_timed_out"] == 0 and s["connections_created"] == 1
    from pool_core import _housekeeper

    assert _housekeeper.needed(pool_core.registry.get_existing(alias).options)
    assert any(t.name == "pool_core-housekeeper" for t in threading.enumerate())
