"""Scenario 3b, network black hole in the kernel: PostgreSQL queries in flight.

Scenario 3's userspace proxy acknowledges every byte, so TCP-level timeouts
never fire behind it, and libpq has no read timeout. Here a throwaway
PostgreSQL runs in a network namespace of its own, reached over a veth pair;
the cut puts a ``blackhole`` qdisc (drops every outgoing packet) on both ends,
so retransmissions and keepalive probes go unanswered, as on a dead link.

With libpq's ``tcp_user_timeout`` and keepalives in ``OPTIONS`` (the README's
advice, with short values) every query in flight fails with a Django error
within the TCP bound, checkouts during the cut fail within CONNECT_TIMEOUT /
TIMEOUT, the broken connections are discarded, and once the network is back
every thread's next request succeeds. Each option alone leaves one kind of
wait unbounded, which the second test shows.

Needs root, ``ip`` and ``tc`` (CI runs as root); never touches an interface
other than the veth pair it creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections, transaction
from django.db.utils import DatabaseError

from pool_core import PoolTimeout
from tests import _servers
from tests.reliability._figures import record
from tests.reliability.conftest import Monitor, drop_engine, make_engine, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.heavy

SIZE, OVERFLOW, THREADS = 2, 2, 4
TIMEOUT, CONNECT_TIMEOUT = 3, 2
USER_TIMEOUT_MS = 3000
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 1, "keepalives_interval": 1, "keepalives_count": 3}
TCP_OPTIONS = {**KEEPALIVES, "tcp_user_timeout": USER_TIMEOUT_MS}
# Linux closes the socket tcp_user_timeout after sending data that stays
# unacknowledged (retransmission timer, clamped to the timeout), or after the
# peer's last packet once a keepalive probe is out (probes start keepalives_idle
# = 1 s after it, then every keepalives_interval = 1 s; keepalives_count is
# ignored when tcp_user_timeout is set): at most 3 + 1 s. Then Django, leaving
# the outermost atomic block whose rollback failed, turns autocommit back on
# with a new connection: one connect attempt, bounded by CONNECT_TIMEOUT.
# +6 s for 2 busy cores.
IN_FLIGHT_LIMIT = USER_TIMEOUT_MS / 1000 + KEEPALIVES["keepalives_interval"] + CONNECT_TIMEOUT + 6
# As in scenario 3: wait for a slot, ping (bounded), reconnect (bounded); about "not forever".
CHECKOUT_LIMIT = TIMEOUT + 3 * CONNECT_TIMEOUT + 10


class _Failure:
    """A summary of an error: keeping the exception would keep its dead connection alive."""

    def __init__(self, e: BaseException) -> None:
        self.name, self.module, self.text = type(e).__name__, type(e).__module__, str(e).strip()[:200]
        self.is_pool_timeout = isinstance(e, PoolTimeout)
        chain: list[str] = []  # this error and the ones it was raised from or while handling
        cause: BaseException | None = e
        while cause is not None and len(chain) < 5:
            chain.append(str(cause).strip().splitlines()[0][:120] if str(cause).strip() else type(cause).__name__)
            cause = cause.__cause__ or cause.__context__
        self.chain = chain

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}({self.text!r})"


class BlackHole:
    """A throwaway PostgreSQL in its own network namespace, and a switch that cuts its veth link."""

    def __init__(self) -> None:
        n = os.getpid()
        self.ns, self.host_if, self.ns_if = f"poolbh{n}", f"pbh{n}h", f"pbh{n}n"  # names <= 15 chars
        a, b = (n // 64) % 256, (n % 64) * 4  # a /30 of 10.213.0.0/16 per process
        self.host_ip, self.ns_ip = f"10.213.{a}.{b + 1}", f"10.213.{a}.{b + 2}"
        self.base = ""
        self.ctl: list[str] = []
        self.cut_now = False

    def _run(self, *cmd: str, in_ns: bool = False, check: bool = True) -> None:
        full = (["ip", "netns", "exec", self.ns] if in_ns else []) + list(cmd)
        p = subprocess.run(full, capture_output=True, text=True)
        if check and p.returncode:
            raise RuntimeError(f"{' '.join(full)} failed: {p.stderr.strip()}")

    def start(self) -> _servers.Server:
        self._run("ip", "netns", "add", self.ns)
        self._run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, "netns", self.ns)
        self._run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        self._run("ip", "link", "set", self.host_if, "up")
        self._run("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if, in_ns=True)
        self._run("ip", "link", "set", self.ns_if, "up", in_ns=True)
        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[-1]
        self.base = tempfile.mkdtemp(prefix="pool-test-pg-netns-")
        pw = pwd.getpwnam("postgres")
        os.chown(self.base, pw.pw_uid, pw.pw_gid)
        data, port = os.path.join(self.base, "data"), _servers._free_port()
        as_pg = ["runuser", "-u", "postgres", "--"]
        self._run(*as_pg, f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write(f"port = {port}\nlisten_addresses = '{self.ns_ip}'\nunix_socket_directories = '{self.base}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        with open(os.path.join(data, "pg_hba.conf"), "a") as f:
            f.write(f"host all all {self.host_ip}/32 trust\n")
        self.ctl = [*as_pg, f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(self.base, "log"), "-w"]
        self._run(*self.ctl, "start", in_ns=True)  # the postmaster stays in the namespace
        return _servers.Server("postgresql", self.ns_ip, port, "postgres", origin="netns")

    def cut(self) -> None:
        self.cut_now = True
        self._run("tc", "qdisc", "add", "dev", self.host_if, "root", "blackhole")
        self._run("tc", "qdisc", "add", "dev", self.ns_if, "root", "blackhole", in_ns=True)

    def resume(self) -> None:
        if self.cut_now:
            self._run("tc", "qdisc", "del", "dev", self.host_if, "root", check=False)
            self._run("tc", "qdisc", "del", "dev", self.ns_if, "root", in_ns=True, check=False)
            self.cut_now = False

    def stop(self) -> None:
        """Idempotent, whatever state start() reached."""
        if self.ctl:
            self._run(*self.ctl, "-m", "immediate", "stop", check=False)
            self.ctl = []
        self._run("ip", "link", "del", self.host_if, check=False)  # deletes its peer too
        self._run("ip", "netns", "del", self.ns, check=False)
        if self.base:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def hole() -> Iterator[tuple[BlackHole, _servers.Server]]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace and a veth pair (CI runs as root)")
    missing = [tool for tool in ("ip", "tc", "runuser") if not shutil.which(tool)]
    if missing or not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip(f"needs iproute2 (ip, tc), runuser and PostgreSQL server binaries; missing: {missing or 'initdb'}")
    bh = BlackHole()
    try:
        yield bh, bh.start()
    finally:
        bh.stop()


@pytest.fixture
def eng(hole, fresh_pools):
    bh, server = hole
    e = make_engine(server, "postgresql", "blackhole")
    e.admin_close()  # only the pool's sockets to the server while the test runs
    yield e
    bh.resume()
    drop_engine(e)


def test_in_flight_queries_fail_by_tcp_timeouts_then_recover(hole, eng):
    """Four threads on a pool of 2 + 2 when the link goes dead.

    Two write (INSERT, then pg_sleep(0.2), in transaction.atomic), one reads
    (pg_sleep(0.2) in autocommit): at the cut their queries wait for an answer
    with nothing unacknowledged (keepalive probes end that). The fourth holds
    a connection in a transaction and sends an INSERT right after the cut:
    unacknowledged data (retransmissions and tcp_user_timeout end that).
    """
    bh = hole[0]
    alias = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": TIMEOUT,
                            "CONNECT_TIMEOUT": CONNECT_TIMEOUT}, OPTIONS={**eng.extra_options(), **TCP_OPTIONS})
    roles = ["write", "write", "read", "send"]
    lock = threading.Lock()
    stop, holding, cut_done = threading.Event(), threading.Event(), threading.Event()
    committed: list[str] = []
    ops: list[dict[str, Any]] = []  # one per request: thread, kind, start, query (sent at), end, error
    in_query = [False] * THREADS

    def request(n: int, i: int, kind: str) -> None:
        op: dict[str, Any] = {"thread": n, "kind": kind, "start": time.monotonic(), "query": None, "error": None}
        tag = f"t{n}-{i}"
        try:
            if kind == "read":
                with connections[alias].cursor() as cursor:
                    op["query"] = time.monotonic()
                    in_query[n] = True
                    cursor.execute("SELECT pg_sleep(0.2)")
                    cursor.fetchall()
            else:
                with transaction.atomic(using=alias):
                    Note.objects.using(alias).create(text=tag)
                    if kind == "send":  # hold the connection until the link is dead, then write
                        holding.set()
                        cut_done.wait()
                        tag += "-sent"
                        op["query"] = time.monotonic()
                        Note.objects.using(alias).create(text=tag)
                    else:
                        op["query"] = time.monotonic()
                        in_query[n] = True
                        with connections[alias].cursor() as cursor:
                            cursor.execute("SELECT pg_sleep(0.2)")
                            cursor.fetchall()
                with lock:
                    committed.append(tag)
        except DatabaseError as e:
            op["error"] = _Failure(e)
        finally:
            in_query[n] = False
            connections[alias].close()
            op["end"] = time.monotonic()
            with lock:
                ops.append(op)

    def worker(n: int) -> None:
        i = 0
        if roles[n] == "send":
            request(n, i, "send")
            i += 1
        while not stop.is_set():
            request(n, i, "read" if roles[n] == "read" else "write")
            i += 1

    def done_since(t: float, *, ok: bool | None = None) -> list[dict[str, Any]]:
        with lock:
            return [o for o in ops if o["start"] > t and (ok is None or (o["error"] is None) == ok)]

    threads = [threading.Thread(target=worker, args=(n,), name=f"blackhole-{n}") for n in range(THREADS)]
    with Monitor(eng, via_port=eng.server.port, pool_alias=alias) as mon:
        for t in threads:
            t.start()
        try:
            wait_until(lambda: len(done_since(0, ok=True)) >= 4 * THREADS, 60, "the warm-up requests")
            assert done_since(0, ok=False) == []
            assert holding.wait(30)
            # Cut while queries are running (each spends most of its time in pg_sleep).
            wait_until(lambda: all(in_query[:3]), 30, "queries in flight on every loading thread")
            t_cut = time.monotonic()
            bh.cut()
            t_cut_done = time.monotonic()
            cut_done.set()
            # Hold the cut until every thread has also failed a checkout started during it.
            wait_until(lambda: {o["thread"] for o in done_since(t_cut_done)} == set(range(THREADS)),
                       THREADS * (IN_FLIGHT_LIMIT + 2 * CHECKOUT_LIMIT), "a checkout per thread during the cut")
            t_resume = time.monotonic()
            bh.resume()
            t_resume_done = time.monotonic()
            # Recovery: the requests each thread starts once the network is back.
            wait_until(lambda: all(sum(1 for o in done_since(t_resume_done) if o["thread"] == n) >= 3
                                   for n in range(THREADS)), 120, "3 requests per thread after the resume")
        finally:
            stop.set()
            cut_done.set()
            bh.resume()
            for t in threads:
                t.join(IN_FLIGHT_LIMIT + CHECKOUT_LIMIT)
        assert not any(t.is_alive() for t in threads), "a request hung on the silent network"

    # In flight: sent before the cut and not finished when it took effect, or sent into the dead link.
    in_flight = [o for o in ops if o["query"] is not None and o["end"] > t_cut_done
                 and (o["query"] < t_cut or o["kind"] == "send")]
    failed = [o for o in in_flight if o["error"] is not None]
    # Both TCP paths: waiting for an answer (read / write), unacknowledged data (send).
    kinds_failed = {o["kind"] for o in failed}
    assert "send" in kinds_failed and kinds_failed & {"read", "write"}, [(o["kind"], o["error"]) for o in in_flight]
    # ...all failed (or had their answer already), with a Django error, by the TCP bound.
    fail_s: dict[str, list[float]] = {}
    for o in failed:
        fail_s.setdefault(o["kind"], []).append(round(o["end"] - max(o["query"], t_cut), 2))
        assert o["error"].module == "django.db.utils", o["error"]
        # The kernel ended the wait (ETIMEDOUT on the socket), whatever Django raised last.
        assert any("timed out" in m for m in o["error"].chain), o["error"].chain
    slowest_in_flight = max(max(v) for v in fail_s.values())
    assert slowest_in_flight < IN_FLIGHT_LIMIT, fail_s
    # Every checkout during the cut failed within its limits, with a Django error (or PoolTimeout).
    during = [o for o in ops if o["start"] > t_cut_done and o["end"] < t_resume]  # started and ended in the cut
    assert during and all(o["error"] is not None for o in during)
    slowest_checkout = max(o["end"] - o["start"] for o in during)
    assert slowest_checkout < CHECKOUT_LIMIT, slowest_checkout
    for o in during:
        assert o["error"].module == "django.db.utils" or o["error"].is_pool_timeout, o["error"]
    # After the resume: every request of every thread succeeded, nothing broken handed out.
    after = [o for o in ops if o["start"] > t_resume_done]
    failed_after = [o["error"] for o in after if o["error"] is not None]
    assert failed_after == [], failed_after[:3]
    assert {o["thread"] for o in after} == set(range(THREADS))

    tags = set(Note.objects.using(eng.alias).values_list("text", flat=True))
    connections[eng.alias].close()
    lost = len(set(committed) - tags)
    assert lost == 0
    assert mon.peak <= SIZE + OVERFLOW
    errors = [o for o in ops if o["error"] is not None]
    kinds = sorted({next(m for m in o["error"].chain if "timed out" in m) for o in failed})
    times = "; ".join(f"{k} {min(v):.1f}-{max(v):.1f} s" for k, v in sorted(fail_s.items()))
    record("3b. network black hole (kernel)", eng.id, operations=len(ops), faults=1, errors=len(errors),
           rows_lost=lost, peak_connections=mon.peak, bound=SIZE + OVERFLOW, peak_raw=mon.peak_raw,
           in_flight_failure_s=fail_s, slowest_checkout_s=round(slowest_checkout, 2),
           note=f"veth + blackhole qdisc; OPTIONS tcp_user_timeout={USER_TIMEOUT_MS}, keepalives idle/interval/"
                f"count={KEEPALIVES['keepalives_idle']}/{KEEPALIVES['keepalives_interval']}/"
                f"{KEEPALIVES['keepalives_count']}; TIMEOUT={TIMEOUT}, CONNECT_TIMEOUT={CONNECT_TIMEOUT}; "
                f"{len(failed)} queries in flight failed ({times} after the cut or the send; 'write' and 'send' "
                f"include Django's reconnect on leaving atomic) on {' / '.join(kinds)}; {len(during)} checkouts during "
                f"the cut failed (slowest {slowest_checkout:.1f} s); {len(after)} requests after the resume, "
                f"none failed")


def _tx_queue(local_port: int, remote_port: int) -> int | None:
    """Bytes sent and not yet acknowledged on this machine's TCP connection local_port -> remote_port."""
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)) == (
                    local_port, remote_port):
                return int(fields[4].split(":")[0], 16)
    return None


@pytest.mark.parametrize("only", ["tcp_user_timeout", "keepalives"])
def test_each_tcp_option_alone_leaves_a_wait_unbounded(hole, eng, only):
    """Why OPTIONS needs both.

    tcp_user_timeout alone: a query waiting for its answer has nothing
    unacknowledged, and libpq's keepalives run with the system's defaults
    (first probe after 2 hours): it waits through the outage. Keepalives
    alone: a query sent into the dead link is unacknowledged data, and Linux
    sends no keepalive probe then; it is retransmitted until tcp_retries2
    (about 15 minutes). Either wait outlasts twice the bound of the combined
    options, then the query completes once the link is back.
    """
    bh = hole[0]
    options = {"tcp_user_timeout": USER_TIMEOUT_MS} if only == "tcp_user_timeout" else KEEPALIVES
    alias = eng.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": TIMEOUT,
                            "CONNECT_TIMEOUT": CONNECT_TIMEOUT}, OPTIONS={**eng.extra_options(), **options})
    waiting_for_answer = only == "tcp_user_timeout"
    connected, cut_done = threading.Event(), threading.Event()
    outcome: list[object] = []
    port: list[int] = []

    def query() -> None:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT inet_client_port()")
                port.append(cursor.fetchone()[0])
                connected.set()
                if not waiting_for_answer:
                    cut_done.wait()  # the query leaves after the cut: unacknowledged data
                cursor.execute("SELECT pg_sleep(2), 1" if waiting_for_answer else "SELECT 1")
                outcome.append(cursor.fetchone()[-1])
        except DatabaseError as e:
            outcome.append(_Failure(e))
        finally:
            connected.set()
            connections[alias].close()

    still_waiting_s = 2 * (USER_TIMEOUT_MS / 1000 + KEEPALIVES["keepalives_idle"] + KEEPALIVES["keepalives_interval"])
    t = threading.Thread(target=query)
    t.start()
    try:
        assert connected.wait(30) and port, outcome
        if waiting_for_answer:
            # The query reached the server and the client holds no unacknowledged byte.
            wait_until(lambda: eng.q("SELECT count(*) FROM pg_stat_activity WHERE client_port = %s AND "
                                     "state = 'active'", [port[0]])[0][0] == 1, 30, "the query to run")
            eng.admin_close()
            wait_until(lambda: _tx_queue(port[0], eng.server.port) == 0, 30, "the query to be acknowledged")
        bh.cut()
        t_cut = time.monotonic()
        cut_done.set()
        t.join(still_waiting_s)
        assert t.is_alive(), f"the query ended during the cut: {outcome}"
        waited = time.monotonic() - t_cut
        bh.resume()
        t_resume = time.monotonic()
    finally:
        cut_done.set()
        bh.resume()
        t.join(90)  # the next retransmission after the resume; at most about twice the outage
    assert not t.is_alive()
    assert outcome == [1], outcome  # the same connection, after the outage
    record("3b. network black hole (kernel)", f"{eng.id} {only} only", operations=1, faults=1, errors=0,
           rows_lost=0, peak_connections=None, bound=1,
           note=f"OPTIONS {', '.join(f'{k}={v}' for k, v in options.items())}; the query "
                + ("waiting for its answer" if waiting_for_answer else "sent into the dead link")
                + f" was still waiting after {waited:.1f} s of black hole (2x the bound with both options), "
                f"then completed {time.monotonic() - t_resume:.1f} s after the resume")
