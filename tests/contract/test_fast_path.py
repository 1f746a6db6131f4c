"""The checkout fast path: a connection returned clean is parked for the next checkout.

Parked connections keep their slot and skip SQLAlchemy's checkout/checkin; these
tests pin down that they are still pinged when idle, closed by close_idle() and
dispose(), never kept as overflow, and never parked after an error.
"""

from __future__ import annotations

import threading
import time

from django.db import DatabaseError, connections

import pool_core


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


def test_returned_connection_goes_to_a_waiter_not_to_the_shelf(engine):
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
