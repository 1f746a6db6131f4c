"""Server round trips per request cycle: the pool adds none when nothing is needed.

A small TCP proxy (tests/_proxy.py, also used by scripts/bench) sits between
the alias and the real server and counts round trips: every time the client
sends after the server last spoke is one. That is what a network sees,
whatever the protocol message (query, ping, reset), and it needs no
server-side configuration, so it works on the shared servers.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.signals import request_finished, request_started
from django.db import connections, transaction
from django.db.models import F

from tests._round_trip_proxy import RoundTripProxy
from tests.testapp.models import Note

STOCK_ENGINE = {"postgresql": "django.db.backends.postgresql", "mysql": "django.db.backends.mysql"}


@pytest.fixture
def proxy(engine):
    p = RoundTripProxy(engine.server.host, engine.server.port)
    yield p
    connections.close_all()
    import pool_core

    pool_core.dispose()
    p.close()


def _request_cycle(alias: str) -> None:
    request_started.send(sender=None)
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    request_finished.send(sender=None)


def _write_cycle(alias: str) -> None:
    request_started.send(sender=None)
    with transaction.atomic(using=alias):
        note = Note.objects.using(alias).create(text="rt", n=1)
        Note.objects.using(alias).filter(pk=note.pk).update(n=F("n") + 1)
    request_finished.send(sender=None)


def _round_trips(proxy: RoundTripProxy, alias: str, cycle: Callable[[str], None], n: int = 5) -> int:
    cycle(alias)  # open the connection and run Django's per-connection set-up
    cycle(alias)  # and once more on the reused connection
    proxy.reset()
    for _ in range(n):
        cycle(alias)
    return proxy.round_trips


@pytest.mark.requires("exact_round_trips")
def test_one_round_trip_per_trivial_request_cycle(engine, proxy):
    """request_started → SELECT 1 → request_finished costs the server exactly one round trip.

    No ping on a busy connection, no rollback when nothing is open, no
    autocommit or session set-up on checkout, nothing on return.
    """
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60},
                              HOST="127.0.0.1", PORT=proxy.port)
    assert _round_trips(proxy, alias, _request_cycle) == 5
    assert proxy.connections == 1


@pytest.mark.requires("exact_round_trips")
def test_query_timeout_adds_no_round_trip(engine, proxy):
    """QUERY_TIMEOUT is enforced by the housekeeper thread: the trivial cycle still costs one."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60, "QUERY_TIMEOUT": 30},
                              HOST="127.0.0.1", PORT=proxy.port)
    assert _round_trips(proxy, alias, _request_cycle) == 5
    assert proxy.connections == 1


@pytest.mark.requires("stock_engine_comparison", "exact_round_trips")
def test_write_cycle_costs_what_a_persistent_connection_costs(engine, proxy):
    """A transaction costs the same round trips pooled as on Django's persistent connection."""
    pooled = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 60},
                               HOST="127.0.0.1", PORT=proxy.port)
    floor = engine.make_alias(None, ENGINE=STOCK_ENGINE[engine.vendor], CONN_MAX_AGE=None,
                              HOST="127.0.0.1", PORT=proxy.port)
    pooled_trips = _round_trips(proxy, pooled, _write_cycle)
    floor_trips = _round_trips(proxy, floor, _write_cycle)
    assert floor_trips >= 5 * 3  # BEGIN/autocommit off, INSERT, UPDATE, COMMIT...: the counter counts
    assert pooled_trips == floor_trips


@pytest.mark.requires("one_round_trip_ping", "exact_round_trips")
def test_counter_sees_the_ping_of_an_idle_connection(engine, proxy):
    """With PRE_PING_IDLE=0 every checkout pings: one more round trip per cycle.

    This shows the proxy would catch a ping on the hot path.
    """
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "PRE_PING_IDLE": 0},
                              HOST="127.0.0.1", PORT=proxy.port)
    assert _round_trips(proxy, alias, _request_cycle) == 10
