"""Stats, logging, leak detection, system checks, pool_status and Prometheus."""

from __future__ import annotations

import gc
import io
import json
import logging
import multiprocessing
import threading
import time

import pytest
from django.core import checks
from django.core.management import call_command
from django.db import connections, transaction
from django.test import override_settings

import pool_core
from pool_core import _housekeeper


def _wait_for(predicate, timeout=15.0, what="condition"):
    """Poll *predicate* until true; fail after *timeout* seconds (no sleep-and-hope)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        _housekeeper.wake()
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_stats_has_every_key_and_a_wait_histogram(engine):
    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 3})
    for _ in range(5):
        engine.backend_id(alias)
        connections[alias].close()
    s = pool_core.stats(alias)
    assert (s["pool_size"], s["max_overflow"], s["max_connections"]) == (2, 3, 5)
    assert s["checkouts"] == 5 and s["checkout_wait_count"] == 5
    assert s["connections_open"] == s["connections_idle"] == 1
    assert s["connections_checked_out"] == s["overflow_in_use"] == s["threads_waiting"] == 0
    buckets = s["checkout_wait_ms_buckets"]
    assert buckets["+Inf"] == 5
    counts = list(buckets.values())
    assert counts == sorted(counts)  # cumulative
    assert 0 <= s["checkout_wait_ms_p50"] <= s["checkout_wait_ms_p99"] <= s["checkout_wait_ms_max"]
    for key in ("connections_created", "connections_closed", "connections_recycled",
                "connections_invalidated", "connections_reclaimed", "checkout_timeouts",
                "leaks_detected", "checkout_wait_ms_sum"):
        assert key in s
    assert pool_core.stats()[alias]["alias"] == alias


def test_checkout_and_return_are_logged_at_debug(engine, caplog):
    alias = engine.make_alias({"POOL_SIZE": 1})
    caplog.set_level(logging.DEBUG, logger="pool_core")
    engine.backend_id(alias)
    connections[alias].close()
    messages = [r.getMessage() for r in caplog.records if r.name == "pool_core" and r.levelno == logging.DEBUG]
    assert any("checked out" in m for m in messages)
    assert any("returned" in m for m in messages)


def test_leak_is_reported_with_the_checkout_stack(engine, caplog):
    alias = engine.make_alias({"POOL_SIZE": 1, "LEAK_DETECTION_THRESHOLD": 0.05})
    caplog.set_level(logging.WARNING, logger="pool_core")

    def checkout_and_forget_to_close():
        connections[alias].ensure_connection()

    checkout_and_forget_to_close()
    _wait_for(lambda: pool_core.stats(alias)["leaks_detected"] == 1, what="the leak report")
    connections[alias].close()
    leaks = [r.getMessage() for r in caplog.records if "possible connection leak" in r.getMessage()]
    assert len(leaks) == 1
    assert repr(alias) in leaks[0]
    assert "checkout_and_forget_to_close" in leaks[0]  # the stack where it was checked out
    # Reported once per checkout, not on every tick.
    _housekeeper.tick()
    assert pool_core.stats(alias)["leaks_detected"] == 1


def test_waiter_reclaims_the_connection_of_a_dead_thread(engine):
    """A checkout already waiting when the holder dies gets the connection (no timeout)."""
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 30})
    holding, die = threading.Event(), threading.Event()

    def holder():
        connections[alias].ensure_connection()
        holding.set()
        die.wait(30)  # then end without closing

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(30)
    got = []
    waiter = threading.Thread(target=lambda: (got.append(engine.backend_id(alias)), connections[alias].close()))
    waiter.start()
    try:
        _wait_for(lambda: pool_core.stats(alias)["threads_waiting"] == 1, what="the waiter to queue")
    finally:
        die.set()
        t.join()
        waiter.join(30)
    assert got and pool_core.stats(alias)["connections_reclaimed"] == 1
    assert pool_core.stats(alias)["checkout_timeouts"] == 0


def test_housekeeper_runs_only_when_needed(engine):
    """No extra thread in processes that fork (gunicorn --preload) unless asked for."""
    alias = engine.make_alias({"POOL_SIZE": 1})
    engine.backend_id(alias)
    connections[alias].close()
    assert not _housekeeper.needed(pool_core.registry.get_existing(alias).options)
    leaky = engine.make_alias({"POOL_SIZE": 1, "LEAK_DETECTION_THRESHOLD": 60})
    engine.backend_id(leaky)
    connections[leaky].close()
    assert any(t.name == "pool_core-housekeeper" for t in threading.enumerate())


def test_connection_of_a_dead_thread_is_reclaimed_and_rolled_back(engine, caplog):
    """A thread that ends holding a connection (and an open transaction) does not starve the
    pool. The connection is closed, not rolled back (no round trip in a garbage collection,
    which runs on whatever thread triggers it): the server rolls back."""
    from tests.testapp.models import Note

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 30})
    caplog.set_level(logging.WARNING, logger="pool_core")
    started = []

    def worker():
        atomic = transaction.atomic(using=alias)
        atomic.__enter__()  # never exited: the thread dies inside a transaction
        Note.objects.using(alias).create(text="from a dead thread")
        started.append(engine.backend_id(alias))

    t = threading.Thread(target=worker, name="doomed-worker")
    gc.disable()  # else an automatic collection may return it before the checkout below needs it
    try:
        t.start()
        t.join()
        assert started
        assert pool_core.stats(alias)["connections_checked_out"] == 1
        # The pool's only connection is held by a dead thread: the next checkout
        # reclaims it (closed, a new one opened) instead of waiting TIMEOUT and failing.
        assert engine.backend_id(alias) != started[0]
    finally:
        gc.enable()
    s = pool_core.stats(alias)
    assert s["connections_reclaimed"] == 1
    assert (s["rollbacks_on_return"], s["connections_invalidated"], s["connections_created"]) == (0, 1, 2)
    assert s["checkout_timeouts"] == 0
    assert engine.wait_session_gone(started[0])
    assert not Note.objects.using(alias).filter(text="from a dead thread").exists()
    connections[alias].close()
    assert any("reclaimed" in r.getMessage() and "doomed-worker" in r.getMessage() for r in caplog.records)


def test_dead_thread_is_reclaimed_although_another_collection_was_running(engine, caplog):
    """Reclaiming collects garbage, which does nothing while another thread's collection runs.

    CPython runs one collection at a time: gc.collect() returns at once, having
    collected nothing, while another thread's collection is under way (it
    releases the GIL in finalisers, e.g. one that rolls a connection back over
    the network). The dead thread's connection must still come back, counted
    once, and not be reported as referenced elsewhere. The interleaving is
    forced: a finaliser of the other collection waits on an event.
    """
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 5})
    caplog.set_level(logging.WARNING, logger="pool_core")
    holding, die = threading.Event(), threading.Event()
    inside, release = threading.Event(), threading.Event()
    owner: list[int] = []

    class BlocksCollection:
        def __del__(self):
            inside.set()
            release.wait(30)

    def holder():
        owner.append(engine.backend_id(alias))
        holding.set()
        die.wait(30)  # then end without closing

    gc.disable()  # only the collections this test starts run
    try:
        gc.collect()
        t = threading.Thread(target=holder, name="doomed-holder")
        t.start()
        assert holding.wait(30)
        blocker = BlocksCollection()
        blocker.cycle = blocker
        del blocker
        collector = threading.Thread(target=gc.collect, name="other-collection")
        collector.start()
        assert inside.wait(30)  # that collection runs, and started before the holder ended
        die.set()
        t.join()
        assert pool_core.stats(alias)["connections_checked_out"] == 1  # garbage, not yet collected
        pool_core.registry.get_existing(alias).reclaim_orphans()  # its gc.collect() cannot run now
        release.set()
        collector.join(30)
        # The pool's only connection is the dead thread's: this checkout waits and reclaims it.
        assert engine.backend_id(alias) == owner[0]
    finally:
        release.set()
        die.set()
        gc.enable()
    connections[alias].close()
    s = pool_core.stats(alias)
    assert (s["connections_reclaimed"], s["checkout_timeouts"], s["connections_checked_out"]) == (1, 0, 0)
    assert not any("referenced elsewhere" in r.getMessage() for r in caplog.records)


# -- system checks -----------------------------------------------------------------


pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES:UserWarning")


def _ids(databases, **kwargs):
    with override_settings(DATABASES=databases):
        return sorted(m.id for m in checks.run_checks(tags=["pool_core"], **kwargs))


def test_checks_report_bad_and_risky_settings(engine):
    base = engine.settings()
    stock = {**base, "ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    assert _ids({"default": base}) == []
    assert _ids({"default": {**base, "POOL_OPTIONS": {"POOL_SIZE": -1}}}) == ["pool_core.E001"]
    assert _ids({"default": {**base, "POOL_OPTIONS": {"POOLSIZE": 5}}}) == ["pool_core.E001"]
    assert _ids({"default": {**base, "CONN_MAX_AGE": 60}}) == ["pool_core.W002"]
    assert _ids({"default": {**base, "CONN_MAX_AGE": None}}) == ["pool_core.W002"]
    assert _ids({"default": {**base, "POOL_OPTIONS": {"MAX_OVERFLOW": -1}}}) == ["pool_core.W003"]
    assert _ids({"default": {**stock, "POOL_OPTIONS": {"POOL_SIZE": 5}}}) == ["pool_core.W001"]
    with override_settings(DATABASES={"bad": {**base, "POOL_OPTIONS": {"TIMEOUT": 0}}}):
        (message,) = checks.run_checks(tags=["pool_core"])
    assert "DATABASES['bad']" in message.msg and "TIMEOUT" in message.msg


def test_check_command_fails_on_bad_options(engine):
    from django.core.management.base import SystemCheckError

    bad = {**engine.settings(), "POOL_OPTIONS": {"MAX_OVERFLOW": -2}}
    with override_settings(DATABASES={"default": bad}), pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    assert "pool_core.E001" in str(info.value) and "MAX_OVERFLOW" in str(info.value)


def test_database_check_compares_the_bound_with_the_server(engine):
    ok = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 2})
    huge = engine.make_alias({"POOL_SIZE": 100000, "MAX_OVERFLOW": 0})
    found = checks.run_checks(tags=[checks.Tags.database], databases=[ok, huge])
    ours = [m for m in found if m.id == "pool_core.W004"]
    assert len(ours) == 1 and repr(huge) in ours[0].msg and "100000" in ours[0].msg



# -- pool_status -------------------------------------------------------------------


def test_pool_status_table_and_json(engine):
    alias = engine.make_alias({"POOL_SIZE": 3, "MAX_OVERFLOW": 1})
    out = io.StringIO()
    call_command("pool_status", "--database", alias, stdout=out)
    text = out.getvalue()
    assert "this process only" in text
    row = next(line for line in text.splitlines() if f" {alias} " in f" {line} ")
    assert row.split()[3:6] == ["3", "1", "1"]  # size, overflow, open
    out = io.StringIO()
    call_command("pool_status", "--json", "--database", alias, stdout=out)
    data = json.loads(out.getvalue())
    (row,) = data["rows"]
    assert (row["alias"], row["pool_size"], row["connections_open"], row["checkouts"]) == (alias, 3, 1, 2)  # one checkout per call


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
@pytest.mark.parametrize("connect", [True, False], ids=["connect", "no-connect"])
def test_pool_status_reports_a_broken_alias_in_its_row_and_shows_the_others(engine, as_json, connect):
    """Issue 12 item 6: one alias with bad POOL_OPTIONS (or an unreachable
    server) must not hide the others; the command prints every alias, then
    exits non-zero (CommandError) naming the broken ones."""
    from django.core.management.base import CommandError

    good = engine.make_alias({"POOL_SIZE": 2})
    bad = engine.make_alias({"POOL_SIZE": 0})
    down = engine.make_alias({"POOL_SIZE": 1, "TIMEOUT": 5}, HOST="127.0.0.1", PORT=1, PASSWORD="a")
    engine.backend_id(good)  # the good alias has a pool either way
    connections[good].close()
    out = io.StringIO()
    args = ["pool_status", "--database", good, "--database", bad, "--database", down]
    args += ["--json"] if as_json else []
    args += [] if connect else ["--no-connect"]
    with pytest.raises(CommandError) as info:
        call_command(*args, stdout=out)
    assert bad in str(info.value) and (down in str(info.value)) is connect
    assert info.value.returncode == 1
    text = out.getvalue()
    if as_json:
        rows = {row["alias"]: row for row in json.loads(text)["rows"]}
        assert rows[good]["pool_size"] == 2 and rows[good].get("error") is None
        assert f"DATABASES[{bad!r}]" in rows[bad]["error"] and "POOL_SIZE" in rows[bad]["error"]
        if connect:
            assert "cannot open a connection" in rows[down]["error"]
            assert "*" not in rows[down]["error"]  # PASSWORD='a' masks nothing here
    else:
        lines = text.splitlines()
        good_row = next(line for line in lines if f" {good} " in f" {line} ")
        bad_row = next(line for line in lines if f" {bad} " in f" {line} ")
        assert good_row.split()[3] == "2"  # size
        assert "POOL_SIZE" in bad_row and ">= 1" in bad_row
        if connect:
            down_row = next(line for line in lines if f" {down} " in f" {line} ")
            assert "cannot open a connection" in down_row


def _child_publishes(alias, stats_dir, ready, done):
    from django.db import connections

    connections[alias].ensure_connection()  # held: 1 checked out in the child
    _housekeeper.publish(pool_core.registry.all_pools())
    ready.set()
    done.wait(30)
    connections[alias].close()


@pytest.mark.requires("fork")
def test_pool_status_shows_other_processes_through_the_stats_dir(engine, tmp_path):
    alias = engine.make_alias({"POOL_SIZE": 2})
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    with override_settings(POOL_STATS_DIR=str(tmp_path)):
        child = ctx.Process(target=_child_publishes, args=(alias, str(tmp_path), ready, done))
        child.start()
        try:
            assert ready.wait(30)
            out = io.StringIO()
            call_command("pool_status", "--json", stdout=out)
            rows = json.loads(out.getvalue())["rows"]
            mine = [r for r in rows if r["pid"] == child.pid and r["alias"] == alias]
            assert len(mine) == 1 and mine[0]["connections_checked_out"] == 1
        finally:
            done.set()
            child.join(30)
        assert child.exitcode == 0
        # A process that is gone disappears from the table (its file is removed).
        out = io.StringIO()
        call_command("pool_status", "--json", stdout=out)
        assert all(r["pid"] != child.pid for r in json.loads(out.getvalue())["rows"])
        assert not list(tmp_path.glob(f"*-{child.pid}.json"))


# -- Prometheus --------------------------------------------------------------------


def test_prometheus_collector_exposes_the_stats(engine):
    from prometheus_client import CollectorRegistry, generate_latest

    from pool_core.prometheus import PoolCollector

    alias = engine.make_alias({"POOL_SIZE": 4})
    engine.backend_id(alias)
    registry = CollectorRegistry()
    registry.register(PoolCollector(use_stats_dir=False))
    text = generate_latest(registry).decode()
    assert f'django_db_pool_connections_checked_out{{alias="{alias}"}} 1.0' in text
    assert f'django_db_pool_pool_size{{alias="{alias}"}} 4.0' in text
    assert f'django_db_pool_checkouts_total{{alias="{alias}"}} 1.0' in text
    assert f'django_db_pool_checkout_wait_seconds_bucket{{alias="{alias}",le="+Inf"}} 1.0' in text
    connections[alias].close()


def test_prometheus_view_serves_text_format(engine):
    from django.test import RequestFactory

    from pool_core.prometheus import metrics_view

    alias = engine.make_alias({"POOL_SIZE": 1})
    engine.backend_id(alias)
    connections[alias].close()
    response = metrics_view(RequestFactory().get("/metrics"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert f'django_db_pool_connections_idle{{alias="{alias}"}} 1.0' in response.content.decode()


def test_a_pool_whose_housekeeping_fails_does_not_stop_the_others(engine, caplog, monkeypatch):
    """One tick does every pool's housekeeping (leaks, dead threads, keepalive,
    IDLE_TIMEOUT): an error in one alias's is logged, naming it, and the next
    aliases' still runs."""
    from pool_core.registry import get_existing

    first = engine.make_alias({"POOL_SIZE": 1})
    second = engine.make_alias({"POOL_SIZE": 1})
    for alias in (first, second):
        engine.backend_id(alias)
        connections[alias].close()
    ran: list[str] = []
    pool = get_existing(first)
    housekeep, here = pool.housekeep, threading.get_ident()

    def broken() -> None:
        # Only this test's own tick breaks: the background housekeeper thread may
        # also tick meanwhile, and its error must not be logged into a later test.
        if threading.get_ident() != here:
            return housekeep()
        raise RuntimeError("housekeeping broke")

    monkeypatch.setattr(pool, "housekeep", broken)
    monkeypatch.setattr(get_existing(second), "housekeep", lambda: ran.append(second))
    caplog.set_level(logging.ERROR, logger="pool_core")
    _housekeeper.tick()
    assert second in ran
    assert any(repr(first) in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_stats_dir_that_cannot_be_written_is_reported_once(engine, caplog, tmp_path):
    """POOL_STATS_DIR is written on every housekeeper tick: one that cannot be
    (a file where a directory should be) is logged once with its error, not
    with a traceback every second."""
    alias = engine.make_alias({"POOL_SIZE": 1})
    engine.backend_id(alias)
    connections[alias].close()
    not_a_dir = tmp_path / "stats"
    not_a_dir.write_text("")
    caplog.set_level(logging.WARNING, logger="pool_core")
    with override_settings(POOL_STATS_DIR=str(not_a_dir)):
        for _ in range(3):
            _housekeeper.tick()
    said = [r for r in caplog.records if str(not_a_dir) in r.getMessage()]
    assert len(said) == 1 and "POOL_STATS_DIR" in said[0].getMessage()
    assert said[0].exc_info is None
    assert not [r for r in caplog.records if "tick failed" in r.getMessage()]
