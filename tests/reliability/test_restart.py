"""Scenario 1, server restart under load.

16 threads run write transactions through a pool of 4 + 4 while the
throwaway server is restarted (fast shutdown). Every transaction reported as
committed must be in the table; no request that starts once the server is
back may fail; the pool refills by itself.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections, transaction
from django.db.utils import DatabaseError

import pool_core
from tests.reliability._figures import record
from tests.reliability.conftest import Monitor, private_engine, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.heavy

THREADS, SIZE, OVERFLOW = 16, 4, 4
RESTARTS = 2


eng = private_engine("restart")


def test_restart_under_load(eng):
    alias = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": 60})
    bound = SIZE + OVERFLOW
    committed: list[str] = []
    failures: list[tuple[float, float, BaseException]] = []  # (started, failed, error)
    lock = threading.Lock()
    stop = threading.Event()
    ops = [0]

    def work(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            tag = f"r{n}-{i}"
            started = time.monotonic()
            try:
                with transaction.atomic(using=alias):
                    note = Note.objects.using(alias).create(text=tag, n=n)
                    # By primary key: an UPDATE by the unindexed text column scans the
                    # table, and InnoDB then lets two such transactions deadlock on each
                    # other's new rows (error 1213), a conflict of this workload's own,
                    # whatever the pool does (CI saw one after a restart).
                    Note.objects.using(alias).filter(pk=note.pk).update(n=n + 1)
                with lock:
                    committed.append(tag)
            except DatabaseError as e:
                with lock:
                    failures.append((started, time.monotonic(), e))
                stop.wait(0.02)  # a client backs off a little after an error
            finally:
                connections[alias].close()  # end of request
                with lock:
                    ops[0] += 1

    def committed_count() -> int:
        with lock:
            return len(committed)

    outages: list[tuple[float, float]] = []
    threads = [threading.Thread(target=work, args=(n,), name=f"w{n}") for n in range(THREADS)]
    with Monitor(eng) as mon:
        try:
            for t in threads:
                t.start()
            for _ in range(RESTARTS):
                target = committed_count() + 300
                wait_until(lambda target=target: committed_count() >= target, 120, "load before the restart")
                down = time.monotonic()
                eng.server.restart()  # fast shutdown, then start; returns once it accepts connections
                outages.append((down, time.monotonic()))
            back = outages[-1][1]
            target = committed_count() + 600
            wait_until(lambda: committed_count() >= target, 120, "load after the last restart")
        finally:  # also after a failure: the workers loop until stop
            stop.set()
            for t in threads:
                if t.ident is not None:
                    t.join(120)
    assert not any(t.is_alive() for t in threads)

    eng.admin_close()  # its session died with the restart
    in_table = set(Note.objects.using(alias).values_list("text", flat=True))
    connections[alias].close()
    lost = sorted(set(committed) - in_table)
    # Requests that started after the server was back up must all have worked.
    late = [(s - back, type(e).__name__, str(e)[:120]) for s, f, e in failures if s >= back]
    # Every failure belongs to an outage: started before the server was back up.
    stray = [(type(e).__name__, str(e)[:120]) for s, f, e in failures
             if not any(s <= up for down, up in outages)]
    stats = pool_core.stats(alias)
    assert lost == []
    assert late == [], late[:5]
    assert stray == []
    assert mon.peak <= bound, mon.peak
    # The pool refilled on its own: the last 600 transactions ran on new connections.
    assert stats["connections_created"] > bound
    assert stats["connections_checked_out"] == 0
    assert 0 < stats["connections_open"] <= bound
    record("1. server restart under load", eng.id, operations=ops[0], faults=RESTARTS, errors=len(failures),
           rows_lost=len(lost), peak_connections=mon.peak, bound=bound, peak_raw=mon.peak_raw,
           note=f"{THREADS} threads, pool {SIZE}+{OVERFLOW}, {RESTARTS} fast restarts; "
                f"{len(committed)} commits all in the table; errors only in requests started during "
                f"an outage, 0 after; {stats['connections_created']} connections opened in all")
