"""Scenario 6, PgBouncer in transaction pooling mode in front of PostgreSQL.

A real pgbouncer (Debian's package) with ``pool_mode = transaction`` and 3
server connections; 16 threads run ORM transactions, rollbacks and chunked
``iterator()`` reads through a pool of 4 + 4 with the settings the README
recommends (DISABLE_SERVER_SIDE_CURSORS). Nothing fails, nothing is lost,
rolled-back rows stay out, and PostgreSQL never sees more than pgbouncer's
3 server connections.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest
from django.db import connections, transaction
from django.db.utils import DatabaseError

import pool_core
from tests.reliability._figures import record
from tests.reliability.conftest import (
    Monitor,
    drop_engine,
    make_engine,
    run_threads,
    shared_server,
    wait_until,
)
from tests.testapp.models import Note

pytestmark = pytest.mark.heavy

THREADS, SIZE, OVERFLOW, REQUESTS, SERVER_POOL = 16, 4, 4, 40, 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pgbouncer():
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        pytest.fail("pgbouncer is not installed (apt-get install pgbouncer; scripts/test.sh does it)")
    server = shared_server("postgresql")
    base = tempfile.mkdtemp(prefix="pool-test-pgbouncer-")
    port = _free_port()
    with open(os.path.join(base, "userlist.txt"), "w") as f:
        f.write(f'"{server.user}" ""\n')
    with open(os.path.join(base, "pgbouncer.ini"), "w") as f:
        f.write(f"""[databases]
* = host={server.host} port={server.port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {base}/userlist.txt
pool_mode = transaction
default_pool_size = {SERVER_POOL}
max_client_conn = 200
logfile = {base}/pgbouncer.log
pidfile = {base}/pgbouncer.pid
""")
    cmd = [binary, "-d", os.path.join(base, "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        pw = pwd.getpwnam("postgres")
        for name in os.listdir(base):
            os.chown(os.path.join(base, name), pw.pw_uid, pw.pw_gid)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        cmd[1:1] = ["-u", "postgres"]
    subprocess.run(cmd, check=True, capture_output=True)
    pidfile = os.path.join(base, "pgbouncer.pid")

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        wait_until(listening, 30, "pgbouncer to listen")  # -d exits 0 even if the daemon died
        yield port
    finally:
        try:
            with open(pidfile) as f:
                os.kill(int(f.read().strip()), 15)
        except (OSError, ValueError):
            pass
        deadline = time.monotonic() + 30
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def eng(fresh_pools):
    e = make_engine(shared_server("postgresql"), "postgresql", "pgb")
    yield e
    drop_engine(e)


def test_transaction_pooling(eng, pgbouncer):
    alias = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": 120},
                           PORT=pgbouncer, DISABLE_SERVER_SIDE_CURSORS=True)
    lock = threading.Lock()
    committed: list[str] = []
    rolled_back: list[str] = []
    errors: list[BaseException] = []
    ops = [0]

    class Abort(Exception):
        pass

    def request(n: int, i: int) -> None:
        tag = f"b{n}-{i}"
        if i % 5 == 4:  # a transaction that rolls back
            try:
                with transaction.atomic(using=alias):
                    Note.objects.using(alias).create(text=tag, n=n)
                    raise Abort
            except Abort:
                with lock:
                    rolled_back.append(tag)
        else:
            with transaction.atomic(using=alias):
                note = Note.objects.using(alias).create(text=tag, n=n)
                Note.objects.using(alias).filter(pk=note.pk).update(n=n + 1000)
                assert Note.objects.using(alias).get(pk=note.pk).n == n + 1000
            with lock:
                committed.append(tag)
        if i % 10 == 0:  # a chunked read outside a transaction
            assert sum(1 for _ in Note.objects.using(alias).iterator(chunk_size=7)) >= 1

    def worker(n: int) -> None:
        for i in range(REQUESTS):
            try:
                request(n, i)
            except (DatabaseError, AssertionError) as e:
                with lock:
                    errors.append(e)
            finally:
                connections[alias].close()
                with lock:
                    ops[0] += 1

    with Monitor(eng) as mon:
        run_threads(worker, THREADS, 300)
    stats = pool_core.stats(alias)
    tags = set(Note.objects.using(alias).values_list("text", flat=True))
    connections[alias].close()
    lost = len(set(committed) - tags)
    assert errors == [], [repr(e) for e in errors[:5]]
    assert lost == 0
    assert not (set(rolled_back) & tags)
    assert 0 < mon.peak <= SERVER_POOL
    assert stats["connections_created"] > SERVER_POOL  # more client connections than server ones
    record("6. PgBouncer transaction pooling", eng.id, operations=ops[0], faults=None, errors=len(errors),
           rows_lost=lost, peak_connections=mon.peak, bound=SERVER_POOL, peak_raw=mon.peak_raw,
           note=f"pgbouncer pool_mode=transaction default_pool_size={SERVER_POOL}; {THREADS} threads on pool "
                f"{SIZE}+{OVERFLOW} ({stats['connections_created']} client connections); "
                f"{len(committed)} commits, {len(rolled_back)} rollbacks (absent), chunked iterator() reads; "
                "DISABLE_SERVER_SIDE_CURSORS=True")
