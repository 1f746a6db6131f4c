"""Settings changes (issue 12 items 1 and 3, issue 14 "stats across pool replacement").

A pooled connection is only handed out under the session settings it was set
up for (Django's stock ENGINE is the oracle for what a session looks like);
one alias has one bound whatever its pools' keys; its counters never go back.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from django.test import override_settings

import pool_core
from pool_core import PoolTimeout

STOCK_ENGINE = {"postgresql": "django.db.backends.postgresql", "mysql": "django.db.backends.mysql"}

# Per vendor: a column that stores an instant (converted with the session's
# time zone where the server does that), the session's time zone, and how the
# admin connection reads the stored instant back (independent of any session).
PROBE = {
    "postgresql": ("timestamp with time zone", "SELECT current_setting('TimeZone')",
                   "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM {table} WHERE id = %s"),
    "mysql": ("TIMESTAMP NULL", "SELECT @@SESSION.time_zone",
              "SELECT CAST(UNIX_TIMESTAMP(ts) AS CHAR) FROM {table} WHERE id = %s"),
}
NAIVE_NOON = datetime.datetime(2024, 1, 15, 12, 0)


def _stock_alias(engine: Any) -> str:
    """Django's own backend on the same database (the oracle)."""
    return engine.make_alias(None, ENGINE=STOCK_ENGINE[engine.vendor], OPTIONS={})


def _table(engine: Any) -> str:
    table = f"tz_probe_{engine.alias}"
    column, _, _ = PROBE[engine.vendor]
    with connections[engine.alias].cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, ts {column})")
    connections[engine.alias].close()
    return table


def _probe(engine: Any, alias: str, table: str, row: int, reader: str) -> tuple[str, str]:
    """(session time zone, instant stored for a naive 12:00) on *alias*'s next checkout.

    *reader* (another alias) reads the instant back in a session-independent form.
    """
    _, tz_sql, read_sql = PROBE[engine.vendor]
    with connections[alias].cursor() as cursor:
        cursor.execute(tz_sql)
        tz = str(cursor.fetchone()[0])
        cursor.execute(f"INSERT INTO {table} (id, ts) VALUES (%s, %s)", [row, NAIVE_NOON])
    connections[alias].close()
    with connections[reader].cursor() as cursor:
        cursor.execute(read_sql.format(table=table), [row])
        stored = cursor.fetchone()[0]
    connections[reader].close()
    return tz, str(stored)


def _in_thread(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001
            out.append(e)
        finally:
            connections.close_all()

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def _time_zone_leak_scenario(engine: Any, alias: str, table: str, first_row: int,
                             reader: str) -> list[tuple[str, str]]:
    with override_settings(USE_TZ=False, TIME_ZONE="UTC"):
        engine.backend_id(alias)  # a connection set up under UTC
        with override_settings(TIME_ZONE="Asia/Tokyo"):
            engine.backend_id(alias)
            connections[alias].close()
        here = _probe(engine, alias, table, first_row, reader)
        there = _in_thread(lambda: _probe(engine, alias, table, first_row + 1, reader))
        return [here, there]


def test_time_zone_of_an_override_does_not_leak_onto_the_next_checkout(engine):
    """connection.close() inside override_settings(TIME_ZONE=...) leaves nothing for the next checkout."""
    table = _table(engine)
    reader = _stock_alias(engine)
    try:
        stock = _time_zone_leak_scenario(engine, _stock_alias(engine), table, 1, reader)
        pooled = _time_zone_leak_scenario(engine, engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0}),
                                          table, 11, reader)
        assert pooled == stock
    finally:
        with connections[reader].cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        connections[reader].close()


def _alternate(engine: Any, alias: str, rounds: int) -> tuple[list[str], list[str], set[int]]:
    """Two threads take turns; the second cached its time zone under an override.

    Django resets the cached time zone only on the overriding thread's
    connections, so the second thread keeps Asia/Tokyo (as with the stock
    ENGINE), while this thread is back on UTC.
    """
    _, tz_sql, _ = PROBE[engine.vendor]
    turn = [threading.Event(), threading.Event()]
    cached = threading.Event()
    seen: list[list[str]] = [[], []]
    backends: set[int] = set()
    errors: list[BaseException] = []

    def request(who: int) -> None:
        with connections[alias].cursor() as cursor:
            cursor.execute(tz_sql)
            seen[who].append(str(cursor.fetchone()[0]))
        backends.add(engine.backend_id(alias))
        connections[alias].close()

    def other() -> None:
        try:
            request(1)  # caches Asia/Tokyo
            cached.set()
            for _ in range(rounds):
                assert turn[1].wait(30)
                turn[1].clear()
                request(1)
                turn[0].set()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            turn[0].set()
        finally:
            connections.close_all()

    with override_settings(USE_TZ=False, TIME_ZONE="UTC"):
        with override_settings(TIME_ZONE="Asia/Tokyo"):
            t = threading.Thread(target=other)
            t.start()
            assert cached.wait(30)
        seen[1].clear()
        for _ in range(rounds):
            request(0)
            turn[1].set()
            assert turn[0].wait(30)
            turn[0].clear()
        t.join()
    assert errors == []
    return seen[0], seen[1], backends


def test_threads_with_different_time_zones_share_one_pool_without_churn(engine):
    """Two threads alternating between time zones reuse one session; each sees its own zone."""
    stock_here, stock_there, _ = _alternate(engine, _stock_alias(engine), 3)
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0})
    here, there, backends = _alternate(engine, alias, 20)
    assert set(here) == set(stock_here) and set(there) == set(stock_there)
    assert len(here) == len(there) == 20
    assert len(backends) == 1, f"{len(backends)} sessions for 40 alternating requests"
    assert pool_core.stats(alias)["connections_created"] == 1


def _change_settings(alias: str) -> None:
    """A pool-key change, as the test runner's in-place NAME switch is."""
    s = connections[alias].settings_dict
    s["OPTIONS"] = {**s["OPTIONS"], "connect_timeout": 7}


def test_bound_holds_while_connections_of_the_old_settings_are_checked_out(engine):
    """Connections of a replaced pool keep their slots until they come back."""
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0, "TIMEOUT": 0.5})
    holding = [threading.Event(), threading.Event()]
    release = [threading.Event(), threading.Event()]
    held: list[int] = [0, 0]

    def hold(i: int) -> None:
        try:
            held[i] = engine.backend_id(alias)
            holding[i].set()
            release[i].wait(30)
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(2)]
    try:
        for i, t in enumerate(threads):
            t.start()
            assert holding[i].wait(30)
        _change_settings(alias)
        with pytest.raises(PoolTimeout):
            engine.backend_id(alias)
        connections[alias].close()
        s = pool_core.stats(alias)
        assert s["connections_checked_out"] == 2 and s["max_connections"] == 2
        assert len(engine.server_sessions()) == 2
        release[0].set()
        threads[0].join()
        assert engine.wait_session_gone(held[0]), "the old settings' connection was not closed on return"
        new = engine.backend_id(alias)  # the slot freed by the old connection
        assert new not in held
        assert engine.server_sessions() == {held[1], new}
        assert pool_core.stats(alias)["connections_checked_out"] == 2
    finally:
        for r in release:
            r.set()
        for t in threads:
            t.join()
        connections[alias].close()
    assert engine.wait_session_gone(held[1])
    assert len(engine.server_sessions()) == 1  # the new settings' connection, idle in the pool


def test_counters_survive_a_pool_replacement(engine):
    """Stats are per alias: a settings change never makes a counter go back."""
    alias = engine.make_alias({"POOL_SIZE": 2})
    for _ in range(3):
        engine.backend_id(alias)
        connections[alias].close()
    before = pool_core.stats(alias)
    assert before["checkouts"] == 3 and before["connections_created"] == 1
    _change_settings(alias)
    engine.backend_id(alias)
    connections[alias].close()
    after = pool_core.stats(alias)
    assert after["checkouts"] == 4
    assert after["connections_created"] == 2
    assert after["connections_closed"] >= 1  # the old settings' connection
    assert after["checkout_wait_count"] == 4
    for key, value in before.items():
        if isinstance(value, (int, float)) and not key.startswith("connections_") and key not in (
                "threads_waiting", "overflow_in_use", "pid") and not key.startswith("checkout_wait_ms_"):
            assert after[key] >= value, key


def _unset_time_zone_scenario(engine: Any, alias: str) -> str:
    _, tz_sql, _ = PROBE[engine.vendor]
    with override_settings(USE_TZ=False, TIME_ZONE="Asia/Tokyo"):
        engine.backend_id(alias)  # a session set up under Asia/Tokyo
        connections[alias].close()
        with override_settings(TIME_ZONE=None):
            with connections[alias].cursor() as cursor:
                cursor.execute(tz_sql)
                tz = str(cursor.fetchone()[0])
            connections[alias].close()
    return tz


def test_session_set_up_under_a_time_zone_gets_the_servers_when_settings_name_none(engine):
    """TIME_ZONE = None: Django sets no zone, so a reused session must not keep an earlier one."""
    _, tz_sql, _ = PROBE[engine.vendor]
    pooled = _unset_time_zone_scenario(engine, engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0}))
    fresh = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    with override_settings(USE_TZ=False, TIME_ZONE=None):
        with connections[fresh].cursor() as cursor:
            cursor.execute(tz_sql)
            fresh_tz = str(cursor.fetchone()[0])
        connections[fresh].close()
    assert pooled == fresh_tz  # what a new session of this ENGINE starts with
    if not engine.label:
        # The native drivers start where Django's own backend does (a bridge's
        # driver may send its own zone when it connects: pgjdbc sends the JVM's).
        assert pooled == _unset_time_zone_scenario(engine, _stock_alias(engine))
