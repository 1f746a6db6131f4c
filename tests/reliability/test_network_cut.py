"""Scenario 3, network cut: a TCP proxy in front of the server goes silent.

The proxy (tests/_proxy.py) black-holes every byte: new connections get no
greeting, established ones no answer. With CONNECT_TIMEOUT (and, for MySQL,
the driver's read/write timeouts in OPTIONS) every checkout and query fails
within its limits with a Django error instead of hanging; once the proxy
forwards again the pool recovers by itself. A second fault resets every
connection (proxy.cut()); the next checkouts succeed.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections, transaction
from django.db.utils import DatabaseError

import pool_core
from pool_core import PoolTimeout
from tests._proxy import Proxy
from tests.reliability._figures import record
from tests.reliability.conftest import Monitor, private_engine, wait_until
from tests.reliability.conftest import _established_client_ports as conftest_established
from tests.testapp.models import Note

pytestmark = pytest.mark.heavy


class _Failure:
    def __init__(self, e: BaseException) -> None:
        self.name, self.module, self.text = type(e).__name__, type(e).__module__, str(e)[:200]
        self.is_pool_timeout = isinstance(e, PoolTimeout)

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}({self.text!r})"

SIZE, OVERFLOW, THREADS = 2, 2, 8
TIMEOUT, CONNECT_TIMEOUT, READ_TIMEOUT = 3, 2, 3
# The longest a checkout may take on a silent network: wait for a slot, ping
# (bounded), reconnect (bounded). Generous: this is about "not forever".
CHECKOUT_LIMIT = TIMEOUT + 3 * CONNECT_TIMEOUT + 10


eng = private_engine("cut")


def test_black_hole_then_recovery(eng):
    proxy = Proxy(eng.server.host, eng.server.port)
    options = dict(eng.extra_options())
    if eng.vendor == "mysql":
        options.update(read_timeout=READ_TIMEOUT, write_timeout=READ_TIMEOUT)
    # IDLE_TIMEOUT=0: overflow connections close on return, so SIZE connections sit idle in the
    # pool when the network goes silent (the default keeps all SIZE + OVERFLOW for 600 s, and how
    # many the warm-up burst opened beyond SIZE would depend on scheduling).
    alias = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": TIMEOUT,
                            "CONNECT_TIMEOUT": CONNECT_TIMEOUT, "PRE_PING_IDLE": 0, "IDLE_TIMEOUT": 0},
                           PORT=proxy.port, OPTIONS=options)
    lock = threading.Lock()
    committed: list[str] = []
    failures: list[tuple[str, float, BaseException]] = []
    ops = [0]

    def request(tag: str) -> float:
        start = time.monotonic()
        try:
            with transaction.atomic(using=alias):
                Note.objects.using(alias).create(text=tag)
            with lock:
                committed.append(tag)
        except DatabaseError as e:
            # Keep a summary, not the exception: its traceback would keep the
            # driver's half-open connection (and socket) alive.
            with lock:
                failures.append((tag, time.monotonic() - start, _Failure(e)))
        finally:
            connections[alias].close()
            with lock:
                ops[0] += 1
        return time.monotonic() - start

    def burst(label: str, per_thread: int) -> list[threading.Thread]:
        ts = [threading.Thread(target=lambda n=n: [request(f"{label}{n}-{i}") for i in range(per_thread)])
              for n in range(THREADS)]
        for t in ts:
            t.start()
        return ts

    def join(ts: list[threading.Thread], seconds: float) -> None:
        for t in ts:
            t.join(seconds)
        assert not any(t.is_alive() for t in ts), "a request hung on the silent network"

    faults = 0
    with Monitor(eng, via_port=proxy.port, pool_alias=alias) as mon:
        join(burst("warm", 10), 120)
        assert failures == []
        assert pool_core.stats(alias)["connections_idle"] == SIZE

        # 1. Black hole with connections idle in the pool: every checkout
        # (ping, then reconnect) fails within the limits.
        proxy.pause()
        faults += 1
        ts = burst("cut", 2)
        join(ts, THREADS * 2 * CHECKOUT_LIMIT)
        during = list(failures)
        assert len(during) == THREADS * 2
        slowest = max(d for _, d, _ in during)
        assert slowest < CHECKOUT_LIMIT, slowest
        for _, _, e in during:
            assert e.module == "django.db.utils" or e.is_pool_timeout, repr(e)

        # 2. A query in flight when the network goes silent.
        proxy.resume()
        wait_until(lambda: request("probe") >= 0 and failures[-1][0] != "probe", 60, "a request to succeed again")
        in_flight: list[object] = []
        started = threading.Event()

        def slow() -> None:
            try:
                with transaction.atomic(using=alias):
                    Note.objects.using(alias).create(text="inflight")
                    started.set()
                    with connections[alias].cursor() as cursor:
                        cursor.execute("SELECT pg_sleep(1)" if eng.vendor == "postgresql" else "SELECT SLEEP(1)")
                        cursor.fetchall()
                in_flight.append("committed")
            except DatabaseError as e:
                in_flight.append(_Failure(e))
            finally:
                connections[alias].close()

        t = threading.Thread(target=slow)
        t.start()
        assert started.wait(30)
        proxy.pause()
        faults += 1
        if eng.vendor == "mysql":
            t.join(READ_TIMEOUT + 30)  # read_timeout ends the wait
            assert not t.is_alive()
            assert isinstance(in_flight[0], _Failure) and in_flight[0].module == "django.db.utils", in_flight
        else:
            # libpq has no read timeout: on a real network tcp_user_timeout /
            # keepalives end the wait; this proxy acknowledges the bytes, so
            # the query simply resumes with the network.
            assert not t.join(CONNECT_TIMEOUT) and t.is_alive()
        proxy.resume()
        t.join(60)
        assert not t.is_alive()
        if eng.vendor == "postgresql":
            assert in_flight == ["committed"]

        # 3. Recovery: everything works again, with no manual action.
        n_fail = len(failures)
        join(burst("after", 20), 300)
        after_pause = failures[n_fail:]
        assert after_pause == [], [repr(e) for _, _, e in after_pause[:3]]

        # 4. Reset every connection (RST): the next checkouts all succeed.
        proxy.cut()
        faults += 1
        join(burst("reset", 10), 300)
        after_reset = failures[n_fail:]
        assert after_reset == [], [repr(e) for _, _, e in after_reset[:3]]
    proxy.close()

    tags = set(Note.objects.using(eng.alias).values_list("text", flat=True))  # direct, not proxied
    connections[eng.alias].close()
    lost = len(set(committed) - tags)
    assert lost == 0
    assert mon.peak <= SIZE + OVERFLOW
    kinds = ", ".join(f"{n}x {k}" for k, n in sorted(
        {k: sum(1 for _, _, e in during if e.name == k) for k in {e.name for _, _, e in during}}.items()))
    record("3. network cut (black hole)", eng.id, operations=ops[0], faults=faults, errors=len(failures),
           rows_lost=lost, peak_connections=mon.peak, bound=SIZE + OVERFLOW, peak_raw=mon.peak_raw,
           slowest_failure_s=round(slowest, 2),
           note=f"TIMEOUT={TIMEOUT}, CONNECT_TIMEOUT={CONNECT_TIMEOUT}"
                + (f", read/write_timeout={READ_TIMEOUT}" if eng.vendor == "mysql" else "")
                + f"; {len(during)} checkouts during the cut all failed ({kinds}; slowest {slowest:.1f} s, none hung); "
                + ("in-flight query failed by read_timeout" if eng.vendor == "mysql"
                   else "in-flight query resumed and committed when the network came back")
                + "; 0 errors after resume and after a reset of every connection; peak = the pool's open "
                  f"connections; client sockets to the proxy peaked at {mon.peak_raw}"
                + (" (timed-out connect attempts the driver had not closed yet)" if mon.peak_raw > mon.peak else ""))


def test_connect_timeout_alone_bounds_every_checkout(eng):
    """CONNECT_TIMEOUT without any driver timeout in OPTIONS: ping and connect are both bounded.

    Covers PyMySQL (whose connect_timeout alone leaves the handshake
    unbounded) and psycopg 3 (whose timed-out attempts keep their socket
    until garbage collection: the next connect collects them).
    """
    proxy = Proxy(eng.server.host, eng.server.port)
    alias = eng.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 30, "CONNECT_TIMEOUT": CONNECT_TIMEOUT,
                            "PRE_PING_IDLE": 0}, PORT=proxy.port)
    try:
        eng.backend_id(alias)
        connections[alias].close()
        proxy.pause()
        took = []
        for _ in range(3):  # 1st: ping, then reconnect; then reconnects only
            start = time.monotonic()
            with pytest.raises(DatabaseError) as info:
                connections[alias].ensure_connection()
            took.append(time.monotonic() - start)
            assert type(info.value).__module__ == "django.db.utils", repr(info.value)
            del info
            connections[alias].close()
        assert max(took) < CHECKOUT_LIMIT, took
        s = pool_core.stats(alias)
        assert s["pings_failed"] == 1
        # Earlier timed-out attempts were closed by the next connect: only the
        # last attempt's socket can still be open.
        assert len(conftest_established(proxy.port)) <= 1
        proxy.resume()
        wait_until(lambda: _works(eng, alias), 60, "the pool to recover")
    finally:
        proxy.close()
    record("3. network cut (black hole)", f"{eng.id} CONNECT_TIMEOUT only", operations=len(took) + 2, faults=1,
           errors=len(took), rows_lost=0, peak_connections=None, bound=1,
           note=f"no driver timeouts in OPTIONS; each checkout on the silent network failed within "
                f"{max(took):.1f} s (pre-ping cut at CONNECT_TIMEOUT={CONNECT_TIMEOUT}, then connect bounded); "
                "recovered after resume")


def _works(eng, alias) -> bool:
    try:
        eng.backend_id(alias)
        return True
    except DatabaseError:
        return False
    finally:
        connections[alias].close()
