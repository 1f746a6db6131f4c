"""Scenario 2, connections killed by the server under load.

pg_terminate_backend / KILL on connections idle in the pool (the next
checkouts must all succeed) and on connections in flight (that request fails
with a django.db.utils error, the following ones succeed). The light
one-connection versions are in tests/contract/test_pooling.py.
"""

from __future__ import annotations

import random
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
ROUNDS = 10


eng = private_engine("kill")


def _in_flight_sql(eng) -> str:
    if eng.vendor == "postgresql":
        return ("SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                "AND query LIKE '%%pg_sleep%%' AND pid <> pg_backend_pid()")
    return "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND INFO LIKE '%%SLEEP%%'"


def test_kills_idle_and_in_flight(eng):
    alias = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": 60})
    bound = SIZE + OVERFLOW
    lock = threading.Lock()
    committed: list[str] = []
    errors: list[BaseException] = []
    ops = [0]
    sleep_sql = "SELECT pg_sleep(0.05)" if eng.vendor == "postgresql" else "SELECT SLEEP(0.05)"

    def request(n: int, i: int, slow: bool) -> None:
        tag = f"k{n}-{i}-{slow:d}"
        try:
            with transaction.atomic(using=alias):
                Note.objects.using(alias).create(text=tag, n=n)
                if slow:
                    with connections[alias].cursor() as cursor:
                        cursor.execute(sleep_sql)
                        cursor.fetchall()
            with lock:
                committed.append(tag)
        except DatabaseError as e:
            with lock:
                errors.append(e)
        finally:
            connections[alias].close()
            with lock:
                ops[0] += 1

    def burst(slow: bool, per_thread: int) -> None:
        ts = [threading.Thread(target=lambda n=n: [request(n, i, slow) for i in range(per_thread)])
              for n in range(THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not any(t.is_alive() for t in ts)

    with Monitor(eng) as mon:
        # Phase A: kill connections while they sit idle in the pool, then
        # load at once (well inside PRE_PING_IDLE): nothing may fail.
        idle_kills = 0
        for _ in range(ROUNDS):
            burst(False, 5)  # fills the pool
            open_now = sorted(eng.server_sessions())
            assert pool_core.stats(alias)["connections_checked_out"] == 0
            killed = [victim for victim in open_now[::2] if eng.kill(victim)]  # False: had just ended
            idle_kills += len(killed)
            if eng.vendor == "mysql":
                gone = set(killed)
                wait_until(lambda gone=gone: not (gone & eng.server_sessions()), 30, "killed sessions gone")
            burst(False, 5)
        errors_idle = list(errors)
        assert errors_idle == [], [repr(e) for e in errors_idle[:5]]

        # Phase B: kill connections in the middle of a query.
        stop = threading.Event()
        flight_kills = [0]
        ids_sql = _in_flight_sql(eng)

        def killer() -> None:
            while not stop.is_set() and flight_kills[0] < ROUNDS * 3:
                try:
                    busy = [r[0] for r in eng.q(ids_sql, [eng.dbname])]
                except Exception:  # noqa: BLE001
                    busy = []
                if busy:
                    try:
                        eng.q(*(("SELECT pg_terminate_backend(%s)", [random.choice(busy)])
                                if eng.vendor == "postgresql"
                                else (f"KILL {int(random.choice(busy))}", None)))
                    except Exception:  # noqa: BLE001 - MySQL: "Unknown thread id", the query just ended
                        continue
                    flight_kills[0] += 1
                    stop.wait(0.1)
                else:
                    stop.wait(0.005)

        k = threading.Thread(target=killer)
        k.start()
        started = time.monotonic()
        try:
            while flight_kills[0] < ROUNDS * 3 and time.monotonic() - started < 120:
                burst(True, 4)
        finally:  # also after a failure: the killer loops until stop
            stop.set()
            k.join(30)
        errors_flight = errors[len(errors_idle):]
        n_before = len(errors)
        burst(False, 10)  # after the kills: everything works
        errors_after = errors[n_before:]

    in_table = set(Note.objects.using(alias).values_list("text", flat=True))
    connections[alias].close()
    lost = sorted(set(committed) - in_table)
    assert lost == []
    assert errors_after == []
    assert flight_kills[0] >= ROUNDS * 3
    assert 0 < len(errors_flight) <= flight_kills[0]
    for e in errors_flight:
        assert type(e).__module__ == "django.db.utils", repr(e)
    assert mon.peak <= bound
    record("2. connections killed by the server", eng.id, operations=ops[0], faults=idle_kills + flight_kills[0],
           errors=len(errors), rows_lost=len(lost), peak_connections=mon.peak, bound=bound, peak_raw=mon.peak_raw,
           note=f"{idle_kills} kills of idle pooled connections -> 0 errors; {flight_kills[0]} kills mid-query "
                f"-> {len(errors_flight)} requests failed, all django.db.utils "
                f"({', '.join(sorted({type(e).__name__ for e in errors_flight}))}); 0 errors afterwards")
