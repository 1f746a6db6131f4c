#!/usr/bin/env python
"""Side-by-side benchmark of Django connection handling: stock Django, pools, and ours.

One run of this script measures every contender on PostgreSQL and MariaDB at
1, 4, 16 and 64 threads, in interleaved rounds (round r runs every contender
once per thread count and workload, in a rotated order), so machine noise hits
every contender alike and ratios to the floor are taken within a round.

Each contender runs in its own worker process (Django settings are global);
the orchestrator sends it one measurement at a time over stdin. A worker:

1. starts N threads that run the workload cycle until a warm-up ends,
2. stops them all at a cycle boundary and reads the server's statement
   counters (from a separate monitoring connection),
3. lets them run for the measured window, recording every cycle's latency,
4. stops them at a cycle boundary and reads the counters again,
5. closes its connections / pool, so the next measurement starts empty.

Server round trips per cycle = statements the server executed for the
contender's own login role (PostgreSQL: ``pg_stat_statements`` calls, utility
statements included; MariaDB: ``Questions`` + ``Com_admin_commands`` for pings,
minus the monitor's own queries) divided by the cycles measured. Opening a
connection (handshake, authentication) is not a statement and is not counted;
the ``conn/cycle`` column shows how often that happens instead.

Usage: ``python scripts/bench/bench.py`` (see ``--help``); ``--smoke`` runs a
few cycles of every contender except the PyPI comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[2]
SRC_DIRS = [str(p) for p in sorted((ROOT / "packages").glob("*/src"))]
DB_NAME = "pool_bench"
THREADS = (1, 4, 16, 64)
WORKLOADS = ("request", "write", "slow")
DEFAULT_WORKLOADS = ("request", "write")  # "slow" on request: --threads 32,64 --workloads slow
SLOW_WAIT = 0.020  # the slow view's non-database wait (seconds)
TX_BOUND = 8  # the "-8" contenders: POOL_SIZE=8, MAX_OVERFLOW=0 (the slow-view target's bound)
FIXED_BOUND = (10, 10)  # "ours-20": POOL_SIZE=10, MAX_OVERFLOW=10 (the defaults)

# name -> (vendor, description). Order is the display order.
CONTENDERS: dict[str, tuple[str, str]] = {
    "pg:django-age0": ("postgresql", "Django, CONN_MAX_AGE=0 (connect per request)"),
    "pg:floor": ("postgresql", "Django, CONN_MAX_AGE=None (persistent per thread) = floor"),
    "pg:django-pool": ("postgresql", "Django's native psycopg pool (OPTIONS['pool'])"),
    "pg:django-pool-20": ("postgresql", "Django's native psycopg pool, min_size=10, max_size=20 (bound 20)"),
    "pg:dbcp": ("postgresql", "django-db-connection-pool (PyPI)"),
    "pg:ours": ("postgresql", "pool_postgresql, POOL_SIZE=threads, MAX_OVERFLOW=0"),
    "pg:ours-20": ("postgresql", "pool_postgresql, POOL_SIZE=10, MAX_OVERFLOW=10 (bound 20)"),
    "pg:ours-tx": ("postgresql", "pool_postgresql, CHECKOUT='transaction', POOL_SIZE=threads, MAX_OVERFLOW=0"),
    "pg:tx-8": ("postgresql", "pool_postgresql, CHECKOUT='transaction', POOL_SIZE=8, MAX_OVERFLOW=0"),
    "pg:ours-8": ("postgresql", "pool_postgresql, CHECKOUT='request', POOL_SIZE=8, MAX_OVERFLOW=0"),
    "pg:django-pool-8": ("postgresql", "Django's native psycopg pool, min_size=max_size=8"),
    "pg:ours-20-close": ("postgresql", "pool_postgresql, 10 + 10, IDLE_TIMEOUT=0 (overflow closed on return)"),
    "pg2:floor": ("postgresql", "psycopg2: Django, CONN_MAX_AGE=None = floor"),
    "pg2:ours": ("postgresql", "psycopg2: pool_postgresql, POOL_SIZE=threads, MAX_OVERFLOW=0"),
    "pg2:ours-tx": ("postgresql", "psycopg2: pool_postgresql, CHECKOUT='transaction', POOL_SIZE=threads"),
    "pg2:tx-8": ("postgresql", "psycopg2: pool_postgresql, CHECKOUT='transaction', POOL_SIZE=8, MAX_OVERFLOW=0"),
    "my:django-age0": ("mysql", "Django, CONN_MAX_AGE=0 (connect per request)"),
    "my:floor": ("mysql", "Django, CONN_MAX_AGE=None (persistent per thread) = floor"),
    "my:dbcp": ("mysql", "django-db-connection-pool (PyPI)"),
    "my:ours": ("mysql", "pool_mysql, POOL_SIZE=threads, MAX_OVERFLOW=0"),
    "my:ours-20": ("mysql", "pool_mysql, POOL_SIZE=10, MAX_OVERFLOW=10 (bound 20)"),
    "my:ours-tx": ("mysql", "pool_mysql, CHECKOUT='transaction', POOL_SIZE=threads, MAX_OVERFLOW=0"),
    "my:tx-8": ("mysql", "pool_mysql, CHECKOUT='transaction', POOL_SIZE=8, MAX_OVERFLOW=0"),
    "my:ours-8": ("mysql", "pool_mysql, CHECKOUT='request', POOL_SIZE=8, MAX_OVERFLOW=0"),
}


def floor_of(name: str) -> str:
    return name.split(":")[0] + ":floor"


def role_of(name: str) -> str:
    return "bench_" + name.replace(":", "_").replace("-", "_")


# ---------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------


class Target:
    """A server, its superuser login, and how to read its counters."""

    def __init__(self, vendor: str, host: str, port: int, user: str, password: str, origin: str) -> None:
        self.vendor, self.host, self.port = vendor, host, port
        self.user, self.password, self.origin = user, password, origin

    def as_dict(self) -> dict[str, Any]:
        return {"vendor": self.vendor, "host": self.host, "port": self.port, "user": self.user,
                "password": self.password, "origin": self.origin}


def _from_url(vendor: str, url: str) -> Target:
    u = urlparse(url)
    return Target(vendor, u.hostname or "127.0.0.1", u.port or (5432 if vendor == "postgresql" else 3306),
                  unquote(u.username or ("postgres" if vendor == "postgresql" else "root")),
                  unquote(u.password or ""), "env")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_postgres(logdir: Path) -> Target:
    """A throwaway PostgreSQL with pg_stat_statements (initdb as the postgres user when root)."""
    import atexit
    import glob
    import pwd
    import shutil
    import tempfile

    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    bindir = bindirs[-1] if bindirs else os.path.dirname(shutil.which("pg_ctl") or "")
    if not bindir or not os.path.exists(os.path.join(bindir, "initdb")):
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found")
    base = tempfile.mkdtemp(prefix="pool-bench-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chown(logdir, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(base, "data"), _free_port()
    subprocess.run(as_user + [f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust",
                              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], check=True, capture_output=True)
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                "max_connections = 300\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_preload_libraries = 'pg_stat_statements'\n"
                "pg_stat_statements.track_utility = on\npg_stat_statements.max = 10000\n")
    ctl = as_user + [f"{bindir}/pg_ctl", "-D", data, "-l", str(logdir / "postgresql.log"), "-w"]
    subprocess.run(ctl + ["start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(ctl + ["-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(stop)
    return Target("postgresql", "127.0.0.1", port, "postgres", "", "throwaway")


def _start_mariadb(logdir: Path) -> Target:
    """A throwaway MariaDB in its own datadir and session (signals to this script don't reach it)."""
    import atexit
    import shutil
    import socket
    import tempfile

    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if not os.path.exists(mariadbd):
        raise RuntimeError("no MariaDB server binary (mariadbd) found")
    base = tempfile.mkdtemp(prefix="pool-bench-mariadb-")
    data, port, sock = os.path.join(base, "data"), _free_port(), os.path.join(base, "mysqld.sock")
    subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={data}",
                    "--auth-root-authentication-method=normal", "--skip-test-db"], check=True, capture_output=True)
    proc = subprocess.Popen(
        [mariadbd, "--no-defaults", "--user=root", f"--datadir={data}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={sock}", f"--pid-file={base}/mysqld.pid",
         f"--log-error={logdir / 'mariadb.log'}", "--skip-name-resolve", "--max-connections=400",
         "--innodb-flush-log-at-trx-commit=2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"MariaDB did not start; see {logdir / 'mariadb.log'}") from None
            time.sleep(0.05)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(stop)
    return Target("mysql", "127.0.0.1", port, "root", "", "throwaway")


def start_servers(vendors: set[str], logdir: Path) -> dict[str, Target]:
    """Servers from POOL_BENCH_PG_URL / POOL_BENCH_MYSQL_URL, else throwaway ones (stopped at exit)."""
    logdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Target] = {}
    if "postgresql" in vendors:
        url = os.environ.get("POOL_BENCH_PG_URL")
        out["postgresql"] = _from_url("postgresql", url) if url else _start_postgres(logdir)
    if "mysql" in vendors:
        url = os.environ.get("POOL_BENCH_MYSQL_URL")
        out["mysql"] = _from_url("mysql", url) if url else _start_mariadb(logdir)
    return out


def prepare_server(t: Target, contenders: list[str]) -> str:
    """Create the database, the table and one login role per contender."""
    roles = [role_of(c) for c in contenders if CONTENDERS[c][0] == t.vendor]
    if t.vendor == "postgresql":
        import psycopg

        with psycopg.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                             dbname="postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
            c.execute(f"CREATE DATABASE {DB_NAME}")
            for r in roles:
                c.execute(f"DROP ROLE IF EXISTS {r}")
                c.execute(f"CREATE ROLE {r} LOGIN")
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")  # the monitor's view
            version = c.execute("SHOW server_version").fetchone()[0]
        with psycopg.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                             dbname=DB_NAME, autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            c.execute("CREATE TABLE bench_item (id bigserial PRIMARY KEY, name varchar(50) NOT NULL, "
                      "n integer NOT NULL)")
            for r in roles:
                c.execute(f"GRANT ALL ON bench_item, bench_item_id_seq TO {r}")
        return f"PostgreSQL {version}"
    import MySQLdb

    c = MySQLdb.connect(host=t.host, port=t.port, user=t.user, passwd=t.password, autocommit=True)
    cur = c.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    cur.execute(f"CREATE DATABASE {DB_NAME}")
    cur.execute(f"CREATE TABLE {DB_NAME}.bench_item (id bigint AUTO_INCREMENT PRIMARY KEY, "
                "name varchar(50) NOT NULL, n integer NOT NULL) ENGINE=InnoDB")
    for r in roles:
        cur.execute(f"DROP USER IF EXISTS '{r}'@'%'")
        cur.execute(f"CREATE USER '{r}'@'%'")
        cur.execute(f"GRANT ALL ON {DB_NAME}.* TO '{r}'@'%'")
    cur.execute("SELECT VERSION()")
    version = cur.fetchone()[0]
    c.close()
    return f"MariaDB/MySQL {version}"


def drop_database(t: Target, contenders: list[str]) -> None:
    roles = [role_of(c) for c in contenders if CONTENDERS[c][0] == t.vendor]
    try:
        if t.vendor == "postgresql":
            import psycopg

            with psycopg.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                 dbname="postgres", autocommit=True) as c:
                c.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
                for r in roles:
                    c.execute(f"DROP ROLE IF EXISTS {r}")
        else:
            import MySQLdb

            c = MySQLdb.connect(host=t.host, port=t.port, user=t.user, passwd=t.password, autocommit=True)
            cur = c.cursor()
            cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
            for r in roles:
                cur.execute(f"DROP USER IF EXISTS '{r}'@'%'")
            c.close()
    except Exception as e:  # best effort on an env server
        print(f"cleanup of {t.vendor} failed: {e}", file=sys.stderr)


# ---------------------------------------------------------------------------
# worker process
# ---------------------------------------------------------------------------


class Monitor:
    """A separate superuser connection: statement counters and connection samples."""

    def __init__(self, t: dict[str, Any], role: str) -> None:
        self.vendor, self.role = t["vendor"], role
        self.queries = 0  # statements the monitor itself sent (MariaDB counts them globally)
        if self.vendor == "postgresql":
            try:
                import psycopg as driver
            except ImportError:  # a psycopg2 contender blocks psycopg 3
                import psycopg2 as driver  # type: ignore[no-redef]
            self.conn = driver.connect(host=t["host"], port=t["port"], user=t["user"],
                                       password=t["password"], dbname="postgres")
            self.conn.autocommit = True
            self.cur = self.conn.cursor()
            self.have_pgss = self._try_pgss()
        else:
            import MySQLdb

            self.conn = MySQLdb.connect(host=t["host"], port=t["port"], user=t["user"],
                                        passwd=t["password"], autocommit=True)
            self.cur = self.conn.cursor()
        self.lock = threading.Lock()

    def _try_pgss(self) -> bool:
        try:
            self.cur.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
            self.cur.fetchall()
            return True
        except Exception:
            return False

    def counters(self) -> dict[str, int]:
        with self.lock:
            if self.vendor == "postgresql":
                if not self.have_pgss:
                    return {}
                self.cur.execute(
                    "SELECT s.query, s.calls FROM pg_stat_statements s "
                    "JOIN pg_roles r ON r.oid = s.userid "
                    "JOIN pg_database d ON d.oid = s.dbid "
                    "WHERE r.rolname = %s AND d.datname = %s",
                    (self.role, DB_NAME),
                )
                rows = self.cur.fetchall()
                out: dict[str, int] = {}
                for q, calls in rows:
                    out[q] = out.get(q, 0) + int(calls)
                return out
            self.cur.execute(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_admin_commands', "
                "'Com_select', 'Com_insert', 'Com_update', 'Com_set_option', 'Com_commit', "
                "'Com_rollback', 'Com_begin', 'Com_show_status', 'Connections')"
            )
            self.queries += 1
            return {k: int(v) for k, v in self.cur.fetchall()}

    def connections(self) -> int:
        with self.lock:
            if self.vendor == "postgresql":
                self.cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (self.role,))
                return int(self.cur.fetchone()[0])
            self.cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s",
                             (self.role,))
            self.queries += 1
            return int(self.cur.fetchone()[0])

    def delta(self, before: dict[str, int], after: dict[str, int], monitor_queries: int) -> dict[str, Any]:
        """Statements the contender sent between two counter snapshots."""
        if not before and not after:
            return {"statements": None, "breakdown": {}}
        if self.vendor == "postgresql":
            brk = {q: after.get(q, 0) - before.get(q, 0) for q in set(before) | set(after)}
            brk = {q: n for q, n in brk.items() if n}
            return {"statements": sum(brk.values()), "breakdown": brk, "connections_opened": None}
        d = {k: after[k] - before[k] for k in after}
        # The monitor's own statements: the SHOW STATUS that took `after`
        # (counted in Questions and Com_show_status) and the PROCESSLIST
        # samples in between (Questions and Com_select).
        questions = d["Questions"] - monitor_queries
        d["Com_show_status"] -= 1
        d["Com_select"] -= monitor_queries - 1
        brk = {k: v for k, v in d.items() if k.startswith("Com_") and v}
        return {"statements": questions + d["Com_admin_commands"], "breakdown": brk,
                "connections_opened": d["Connections"]}


def _django_settings(spec: dict[str, Any], threads_list: list[int]) -> dict[str, Any]:
    t, name = spec["target"], spec["contender"]
    kind = name.split(":")[1]
    vendor = t["vendor"]
    base: dict[str, Any] = {
        "NAME": DB_NAME, "USER": role_of(name), "PASSWORD": "", "HOST": t["host"], "PORT": t["port"],
        "CONN_MAX_AGE": 0, "OPTIONS": {},
    }
    engine = {"postgresql": "django.db.backends.postgresql", "mysql": "django.db.backends.mysql"}[vendor]
    if kind == "dbcp":
        engine = {"postgresql": "dj_db_conn_pool.backends.postgresql",
                  "mysql": "dj_db_conn_pool.backends.mysql"}[vendor]
    elif kind.startswith(("ours", "tx-")):
        engine = {"postgresql": "pool_postgresql", "mysql": "pool_mysql"}[vendor]
    dbs: dict[str, Any] = {}
    for n in threads_list:
        s = json.loads(json.dumps(base))
        if kind == "floor":
            s["CONN_MAX_AGE"] = None
        elif kind == "django-pool":
            s["OPTIONS"]["pool"] = {"min_size": n, "max_size": n, "timeout": 30}
        elif kind == "django-pool-8":
            s["OPTIONS"]["pool"] = {"min_size": TX_BOUND, "max_size": TX_BOUND, "timeout": 30}
        elif kind == "django-pool-20":
            s["OPTIONS"]["pool"] = {"min_size": FIXED_BOUND[0], "max_size": sum(FIXED_BOUND), "timeout": 30}
        elif kind == "dbcp":
            s["POOL_OPTIONS"] = {"POOL_SIZE": n, "MAX_OVERFLOW": 0, "TIMEOUT": 30}
        elif kind == "ours":
            s["POOL_OPTIONS"] = {"POOL_SIZE": n, "MAX_OVERFLOW": 0, "TIMEOUT": 30}
        elif kind == "ours-tx":
            s["POOL_OPTIONS"] = {"POOL_SIZE": n, "MAX_OVERFLOW": 0, "TIMEOUT": 30, "CHECKOUT": "transaction"}
        elif kind in ("tx-8", "ours-8"):
            s["POOL_OPTIONS"] = {"POOL_SIZE": TX_BOUND, "MAX_OVERFLOW": 0, "TIMEOUT": 30,
                                 "CHECKOUT": "transaction" if kind == "tx-8" else "request"}
        elif kind == "ours-20":
            s["POOL_OPTIONS"] = {"POOL_SIZE": FIXED_BOUND[0], "MAX_OVERFLOW": FIXED_BOUND[1], "TIMEOUT": 30}
        elif kind == "ours-20-close":
            s["POOL_OPTIONS"] = {"POOL_SIZE": FIXED_BOUND[0], "MAX_OVERFLOW": FIXED_BOUND[1], "TIMEOUT": 30,
                                 "IDLE_TIMEOUT": 0}
        s["ENGINE"] = engine
        dbs[f"t{n}"] = s
    dbs["default"] = dict(dbs[f"t{threads_list[0]}"])
    probe = json.loads(json.dumps(dbs[f"t{threads_list[0]}"]))
    probe.update(HOST="127.0.0.1", PORT=spec["probe_port"])
    if kind.startswith("django-pool"):
        probe["OPTIONS"]["pool"] = {"min_size": 1, "max_size": 1, "timeout": 30}
    dbs["probe"] = probe
    return dbs


def worker_main(spec: dict[str, Any]) -> None:
    for p in reversed(SRC_DIRS):
        sys.path.insert(0, p)
    name = spec["contender"]
    if name.startswith("pg2:"):
        sys.modules["psycopg"] = None  # type: ignore[assignment]  # Django falls back to psycopg2
        sys.modules["psycopg_pool"] = None  # type: ignore[assignment]
    sys.path.insert(0, str(ROOT))
    from tests._round_trip_proxy import RoundTripProxy

    t = spec["target"]
    proxy = RoundTripProxy(t["host"], t["port"])
    spec["probe_port"] = proxy.port
    import django
    from django.conf import settings

    settings.configure(
        DATABASES=_django_settings(spec, spec["threads"]), USE_TZ=True, TIME_ZONE="UTC",
        INSTALLED_APPS=[], DEBUG=False, LOGGING_CONFIG=None,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.core.signals import request_finished, request_started
    from django.db import connections, models, transaction
    from django.db.models import F

    class Item(models.Model):
        name = models.CharField(max_length=50)
        n = models.IntegerField()

        class Meta:
            app_label = "bench"
            db_table = "bench_item"
            managed = False

    def request_cycle(alias: str) -> None:
        request_started.send(sender=None)
        with connections[alias].cursor() as c:
            c.execute("SELECT 1")
            c.fetchone()
        request_finished.send(sender=None)

    def write_cycle(alias: str) -> None:
        request_started.send(sender=None)
        with transaction.atomic(using=alias):
            obj = Item.objects.using(alias).create(name="bench", n=1)
            Item.objects.using(alias).filter(pk=obj.pk).update(n=F("n") + 1)
        request_finished.send(sender=None)

    def slow_cycle(alias: str) -> None:
        """A "slow view": SELECT 1, 20 ms waiting on something else (an API, a cache), SELECT 1."""
        request_started.send(sender=None)
        with connections[alias].cursor() as c:
            c.execute("SELECT 1")
            c.fetchone()
        time.sleep(SLOW_WAIT)
        with connections[alias].cursor() as c:
            c.execute("SELECT 1")
            c.fetchone()
        request_finished.send(sender=None)

    cycles = {"request": request_cycle, "write": write_cycle, "slow": slow_cycle}
    kind = name.split(":")[1]
    mon = Monitor(spec["target"], role_of(name))

    def cleanup(alias: str) -> None:
        """Close every connection of this measurement so the next starts from zero."""
        if kind.startswith(("ours", "tx-")):
            import pool_core

            pool_core.dispose(alias)
        elif kind.startswith("django-pool"):
            w = connections[alias]
            if alias in type(w)._connection_pools:
                w.close_pool()
        elif kind == "dbcp":
            from dj_db_conn_pool.core import pool_container

            p = pool_container.pop(alias, None)
            if p is not None:
                p.dispose()

    def measure(cmd: dict[str, Any]) -> dict[str, Any]:
        n, workload = int(cmd["threads"]), cmd["workload"]
        alias, fn = f"t{n}", cycles[workload]
        warm_until = time.monotonic() + cmd["warmup"]
        duration = cmd["duration"]
        start_gate = threading.Barrier(n + 1)
        go_gate = threading.Barrier(n + 1)
        end_gate = threading.Barrier(n + 1)
        close_gate = threading.Barrier(n + 1)
        state: dict[str, Any] = {"end": None}
        lat: list[list[float]] = [[] for _ in range(n)]
        finished: list[float] = [0.0] * n
        errors: list[str] = []

        def run(i: int) -> None:
            try:
                done = 0
                while done < 3 or time.monotonic() < warm_until:  # every thread connected and warm
                    fn(alias)
                    done += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            start_gate.wait()
            go_gate.wait()
            mine = lat[i]
            end = state["end"]
            clock = time.perf_counter
            prof = None
            if i == 0 and os.environ.get("POOL_BENCH_PROFILE"):  # debugging aid: profile thread 0
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            try:
                while True:
                    t0 = clock()
                    fn(alias)
                    t1 = clock()
                    mine.append(t1 - t0)
                    if time.monotonic() >= end:
                        break
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            finished[i] = time.perf_counter()
            if prof is not None:
                prof.disable()
                prof.dump_stats(f"{os.environ['POOL_BENCH_PROFILE']}-{name.replace(':', '_')}-{n}-{workload}")
            end_gate.wait()
            close_gate.wait()
            connections.close_all()

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
        for th in threads:
            th.start()
        start_gate.wait()
        before = mon.counters()
        q0 = mon.queries
        peak = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak[0] = max(peak[0], mon.connections())
                sampling.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        state["end"] = time.monotonic() + duration
        sampler.start()
        t_start = time.perf_counter()
        cpu_start = time.process_time()
        go_gate.wait()
        end_gate.wait()
        cpu_end = time.process_time()
        t_end = max(finished)
        sampling.set()
        sampler.join()
        peak[0] = max(peak[0], mon.connections())
        after = mon.counters()
        monitor_queries = mon.queries - q0
        close_gate.wait()
        for th in threads:
            th.join()
        cleanup(alias)
        all_lat = sorted(x for per in lat for x in per)
        count = len(all_lat)
        delta = mon.delta(before, after, monitor_queries)
        stm = delta["statements"]
        opened = delta.get("connections_opened")
        return {
            "contender": name, "threads": n, "workload": workload, "cycles": count,
            "seconds": t_end - t_start, "rps": count / (t_end - t_start) if count else 0.0,
            "p50_ms": 1000 * all_lat[count // 2] if count else None,
            "p99_ms": 1000 * all_lat[min(count - 1, int(count * 0.99))] if count else None,
            "peak_connections": peak[0],
            # CPU of the whole worker process (all threads, the 20 ms sampler included) per cycle:
            # unlike throughput, barely moved by other load on the machine.
            "cpu_us": 1e6 * (cpu_end - cpu_start) / count if count else None,
            "statements": stm,
            "per_cycle": (stm / count) if (stm is not None and count) else None,
            "connections_opened": opened,
            "breakdown": {k: v / count for k, v in delta["breakdown"].items()} if count else {},
            "errors": errors[:3],
        }

    def probe(cmd: dict[str, Any]) -> dict[str, Any]:
        """Round trips per cycle on the wire, one thread, through the counting proxy."""
        fn, n = cycles[cmd["workload"]], int(cmd["cycles"])
        for _ in range(3):
            fn("probe")  # connect, Django's per-connection set-up, pool warm
        proxy.reset()
        opened = proxy.connections
        for _ in range(n):
            fn("probe")
        trips, opened = proxy.round_trips, proxy.connections - opened
        connections.close_all()
        cleanup("probe")
        return {"contender": name, "workload": cmd["workload"], "round_trips_per_cycle": trips / n,
                "connections_per_cycle": opened / n}

    print(json.dumps({"ready": name}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        result = probe(cmd) if cmd.get("probe") else measure(cmd)
        print(json.dumps(result), flush=True)
    for alias in list(spec_aliases(spec)):
        cleanup(alias)
    proxy.close()


def spec_aliases(spec: dict[str, Any]) -> list[str]:
    return [f"t{n}" for n in spec["threads"]]


class Worker:
    def __init__(self, python: str, spec: dict[str, Any]) -> None:
        self.name = spec["contender"]
        self.proc = subprocess.Popen(
            [python, __file__, "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        first = self._read()
        if first.get("ready") != self.name:
            raise RuntimeError(f"worker {self.name} did not start: {first}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} exited (code {self.proc.wait()})")
        return json.loads(line)

    def measure(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(60)
        except Exception:
            self.proc.kill()


# ---------------------------------------------------------------------------
# orchestration and reporting
# ---------------------------------------------------------------------------


def applicable(name: str, threads: int) -> bool:
    if "-20" in name:
        return threads > sum(FIXED_BOUND)  # identical to "ours" below the bound
    return True


def aggregate(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median over rounds; ratios to the floor are taken within each round."""
    by: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in raw:
        by.setdefault((r["contender"], r["threads"], r["workload"]), []).append(r)
    floors = {(r["round"], r["contender"], r["threads"], r["workload"]): r["rps"] for r in raw}
    rows = []
    for (name, n, wl), rs in by.items():
        ratios = []
        for r in rs:
            f = floors.get((r["round"], floor_of(name), n, wl))
            if f:
                ratios.append(r["rps"] / f)
        stm = [r["statements"] for r in rs if r["statements"] is not None]
        cyc = sum(r["cycles"] for r in rs)
        opened = [r["connections_opened"] for r in rs if r.get("connections_opened") is not None]
        brk: dict[str, float] = {}
        for r in rs:
            for k, v in r["breakdown"].items():
                brk[k] = brk.get(k, 0.0) + v * r["cycles"]
        rows.append({
            "contender": name, "vendor": CONTENDERS[name][0], "threads": n, "workload": wl,
            "rounds": len(rs), "cycles": cyc,
            "rps": statistics.median(r["rps"] for r in rs),
            "rps_all": [round(r["rps"], 1) for r in rs],
            "ratio_to_floor": statistics.median(ratios) if ratios else None,
            "ratios": [round(x, 3) for x in ratios],
            "p50_ms": statistics.median(r["p50_ms"] for r in rs if r["p50_ms"] is not None),
            "p99_ms": statistics.median(r["p99_ms"] for r in rs if r["p99_ms"] is not None),
            "peak_connections": max(r["peak_connections"] for r in rs),
            "cpu_us_per_cycle": statistics.median(r["cpu_us"] for r in rs if r.get("cpu_us") is not None)
            if any(r.get("cpu_us") is not None for r in rs) else None,
            "round_trips_per_cycle": (sum(stm) / cyc) if stm and len(stm) == len(rs) and cyc else None,
            "connections_opened_per_cycle": (sum(opened) / cyc) if opened and cyc else None,
            "breakdown_per_cycle": {k: round(v / cyc, 3) for k, v in sorted(brk.items())} if cyc else {},
            "errors": sorted({e for r in rs for e in r["errors"]})[:3],
        })
    order = list(CONTENDERS)
    rows.sort(key=lambda x: (x["vendor"] != "postgresql", x["workload"] != "request", x["threads"],
                             order.index(x["contender"])))
    return rows


def _fmt(v: Any, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [f"# Benchmark results ({meta['date']})", ""]
    out.append(f"Machine: {meta['machine']}. Servers: {', '.join(meta['servers'])}. "
               f"Python {meta['python']}, Django {meta['django']}, psycopg {meta['psycopg']}, "
               f"psycopg2 {meta['psycopg2']}, mysqlclient {meta['mysqlclient']}, "
               f"django-db-connection-pool {meta['dbcp']}, SQLAlchemy {meta['sqlalchemy']}.")
    out.append("")
    out.append(f"{meta['rounds']} interleaved rounds × {meta['duration']} s measured "
               f"(+{meta['warmup']} s warm-up) per cell; values are medians over rounds; "
               "'× floor' is the median of per-round ratios to the floor measured in the same round. "
               "'round trips (wire)': request/response exchanges per cycle counted by a TCP proxy, one "
               "thread, connection set-up included; 'statements (server)': statements the server "
               "executed for the contender's login per cycle, at that thread count "
               "(see docs/performance.md).")
    out.append("")
    for vendor, title in (("postgresql", "PostgreSQL"), ("mysql", "MariaDB")):
        for wl in WORKLOADS:
            sel = [r for r in rows if r["vendor"] == vendor and r["workload"] == wl]
            if not sel:
                continue
            what = {"request": "request cycle: request_started → SELECT 1 → request_finished",
                    "write": "write cycle: request_started → atomic(INSERT + UPDATE) → request_finished",
                    "slow": f"slow view: request_started → SELECT 1 → {SLOW_WAIT * 1000:g} ms sleep → "
                            "SELECT 1 → request_finished"}[wl]
            out += [f"## {title}, {what}", "",
                    "| threads | contender | cycles/s | × floor | p50 ms | p99 ms | peak server conns | "
                    "round trips/cycle (wire) | statements/cycle (server) | client CPU µs/cycle |",
                    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for r in sel:
                out.append(
                    f"| {r['threads']} | {r['contender'].split(':', 1)[1] if not r['contender'].startswith('pg2') else 'psycopg2 ' + r['contender'].split(':')[1]} "
                    f"| {r['rps']:.0f} | {_fmt(r['ratio_to_floor'], '.3f')} "
                    f"| {_fmt(r['p50_ms'], '.2f')} | {_fmt(r['p99_ms'], '.2f')} | {r['peak_connections']} "
                    f"| {_fmt(r.get('wire_round_trips_per_cycle'), '.2f')} "
                    f"| {_fmt(r['round_trips_per_cycle'], '.2f')} | {_fmt(r.get('cpu_us_per_cycle'), '.0f')} |"
                )
            out.append("")
    out += targets(rows)
    out += ["## Contenders", ""]
    for name, (_, desc) in CONTENDERS.items():
        if any(r["contender"] == name for r in rows):
            out.append(f"- `{name}`: {desc}")
    out += ["", "## Statements per cycle, by kind (threads = 1)", ""]
    for r in rows:
        if r["threads"] == min(meta["threads"]) and r["breakdown_per_cycle"]:
            parts = ", ".join(f"`{k}` {v:g}" for k, v in r["breakdown_per_cycle"].items())
            out.append(f"- {r['contender']} / {r['workload']}: {parts}")
    errs = [r for r in rows if r["errors"]]
    if errs:
        out += ["", "## Errors", ""]
        out += [f"- {r['contender']} {r['workload']} {r['threads']}: {r['errors']}" for r in errs]
    return "\n".join(out) + "\n"


def _ratio(raw: list[dict[str, Any]], a: str, b: str, n: int, wl: str) -> float | None:
    """Median over rounds of rps(a) / rps(b), both from the same round."""
    by = {(r["round"], r["contender"]): r["rps"] for r in raw if r["threads"] == n and r["workload"] == wl}
    ratios = [by[(rnd, a)] / by[(rnd, b)] for (rnd, c) in by if c == a and by.get((rnd, b))]
    return statistics.median(ratios) if ratios else None


def targets(rows: list[dict[str, Any]], raw: list[dict[str, Any]] | None = None) -> list[str]:
    """The issue's targets, checked cell by cell for the request cycle."""
    raw = raw if raw is not None else _RAW
    out = ["## Targets (request cycle)", "",
           "| server | threads | ours × floor (≥ 0.95) | ours × django-pool (≥ 1) | ours × dbcp (≥ 1.2) "
           "| round trips/cycle wire / server (= 1) | peak conns ≤ bound |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for prefix, title in (("pg", "PostgreSQL psycopg 3"), ("pg2", "PostgreSQL psycopg2"), ("my", "MariaDB")):
        for n, variant in sorted({(r["threads"], v) for r in rows for v in ("ours", "ours-20", "ours-tx")}):
            ours = next((r for r in rows if r["contender"] == f"{prefix}:{variant}" and r["threads"] == n
                         and r["workload"] == "request"), None)
            if ours is None:
                continue
            bound = sum(FIXED_BOUND) if variant == "ours-20" else n
            cells = []
            for other, goal in (("floor", 0.95), ("django-pool", 1.0), ("dbcp", 1.2)):
                x = _ratio(raw, f"{prefix}:{variant}", f"{prefix}:{other}", n, "request")
                cells.append("—" if x is None else f"{x:.2f} {'✓' if x >= goal else '✗'}")
            wire, server = ours.get("wire_round_trips_per_cycle"), ours["round_trips_per_cycle"]
            rt = f"{_fmt(wire, '.2f')} / {_fmt(server, '.3f')}"
            label = {"ours": title, "ours-tx": f"{title}, CHECKOUT=transaction"}.get(
                variant, f"{title}, pool bound {bound}")
            out.append(f"| {label} | {n} | {' | '.join(cells)} | {rt} | {ours['peak_connections']} ≤ {bound} "
                       f"{'✓' if ours['peak_connections'] <= bound else '✗'} |")
    slow = [r for r in rows if r["workload"] == "slow"]
    if slow:
        out += ["", "## Targets (slow view, pool bound 8)", "",
                "| server | threads | contender | × floor | peak conns | target |", "|---|---:|---|---:|---:|---|"]
        for r in slow:
            kind = r["contender"].split(":")[1]
            if kind not in ("tx-8", "ours-8", "django-pool-8"):
                continue
            x = _ratio(raw, r["contender"], floor_of(r["contender"]), r["threads"], "slow")
            goal = ""
            if kind == "tx-8":
                ok = x is not None and x >= 0.8 and r["peak_connections"] <= TX_BOUND
                goal = f"≥ 0.8 × floor, ≤ {TX_BOUND} conns {'✓' if ok else '✗'}"
            out.append(f"| {r['vendor']} | {r['threads']} | {r['contender']} | {_fmt(x, '.2f')} "
                       f"| {r['peak_connections']} | {goal} |")
    return out + [""]


_RAW: list[dict[str, Any]] = []


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(v, wl) for v in ("postgresql", "mysql") for wl in WORKLOADS
              if any(r["vendor"] == v and r["workload"] == wl for r in rows)]
    fig, axes = plt.subplots(2, max(1, (len(panels) + 1) // 2), figsize=(13, 9), squeeze=False)
    for ax, (vendor, wl) in zip(axes.flat, panels, strict=False):
        names = [c for c in CONTENDERS if CONTENDERS[c][0] == vendor
                 and any(r["contender"] == c and r["workload"] == wl for r in rows)]
        for name in names:
            sel = sorted((r for r in rows if r["contender"] == name and r["workload"] == wl),
                         key=lambda r: r["threads"])
            style = "-" if "ours" in name else "--" if "floor" in name else ":"
            ax.plot([r["threads"] for r in sel], [r["rps"] for r in sel], style, marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(THREADS, [str(t) for t in THREADS])
        ax.set_xlabel("threads")
        ax.set_ylabel("cycles / s")
        ax.set_title(f"{'PostgreSQL' if vendor == 'postgresql' else 'MariaDB'}: {wl} cycle")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Django request cycles per second (higher is better), 2 shared cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for key, dist in (("django", "Django"), ("psycopg", "psycopg"), ("psycopg2", "psycopg2-binary"),
                      ("mysqlclient", "mysqlclient"), ("dbcp", "django-db-connection-pool"),
                      ("sqlalchemy", "SQLAlchemy")):
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = "absent"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--smoke", action="store_true", help="a few cycles of each contender, no PyPI comparison")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=2.0, help="measured seconds per cell")
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--threads", default=",".join(map(str, THREADS)))
    ap.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS), help=f"of {', '.join(WORKLOADS)}")
    ap.add_argument("--contenders", default="", help="comma-separated subset (prefix match), e.g. pg:,my:ours")
    ap.add_argument("--probe-cycles", type=int, default=200, help="cycles through the round-trip proxy")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--report", metavar="RESULTS_JSON", help="only rewrite results.md/png from a results.json")
    args = ap.parse_args()
    if args.report:
        data = json.loads(Path(args.report).read_text())
        _RAW[:] = data["raw"]
        out = Path(args.report).parent
        (out / "results.md").write_text(markdown(data["rows"], data["meta"]))
        chart(data["rows"], out / "throughput.png")
        print(f"rewrote {out}/results.md and throughput.png")
        return
    if not args.worker:
        import signal

        def _stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt  # run the cleanup: workers, databases, throwaway servers

        signal.signal(signal.SIGTERM, _stop)
    if args.worker:
        worker_main(json.loads(args.worker))
        return

    threads = [int(x) for x in args.threads.split(",")]
    workloads = args.workloads.split(",")
    names = list(CONTENDERS)
    if args.contenders:
        wanted = args.contenders.split(",")
        names = [n for n in names if any(n.startswith(w) for w in wanted)]
    if args.smoke:
        names = [n for n in names if not n.endswith(":dbcp")]
        threads, args.rounds, args.duration, args.warmup, args.probe_cycles = [1, 4], 1, 0.2, 0.1, 20
    if versions()["dbcp"] == "absent":
        names = [n for n in names if not n.endswith(":dbcp")]
    vendors = {CONTENDERS[n][0] for n in names}
    import tempfile

    logdir = Path(tempfile.mkdtemp(prefix="pool-bench-logs-"))
    targets = start_servers(vendors, logdir)
    print(f"servers: {', '.join(f'{t.vendor} 127.0.0.1:{t.port} ({t.origin})' for t in targets.values())}; "
          f"server logs in {logdir}", flush=True)
    labels = [prepare_server(targets[v], names) for v in sorted(vendors)]
    workers: dict[str, Worker] = {}
    raw: list[dict[str, Any]] = []
    probes: dict[tuple[str, str], dict[str, Any]] = {}
    started = time.time()
    try:
        for n in names:
            spec = {"contender": n, "target": targets[CONTENDERS[n][0]].as_dict(), "threads": threads}
            workers[n] = Worker(sys.executable, spec)
        for wl in workloads:
            for name in names:
                pr = workers[name].measure(probe=True, workload=wl, cycles=args.probe_cycles)
                probes[(name, wl)] = pr
                print(f"probe   {name:16s} {wl:7s}   1 thr: {pr['round_trips_per_cycle']:.2f} round trips/cycle "
                      f"on the wire, {pr['connections_per_cycle']:.2f} connections/cycle", flush=True)
        for rnd in range(args.rounds):
            for n_threads in threads:
                for wl in workloads:
                    cell = [n for n in names if applicable(n, n_threads)]
                    k = rnd % len(cell)
                    for name in cell[k:] + cell[:k]:  # rotate the order each round
                        r = workers[name].measure(threads=n_threads, workload=wl,
                                                  duration=args.duration, warmup=args.warmup)
                        r["round"] = rnd
                        raw.append(r)
                        print(f"round {rnd} {name:16s} {wl:7s} {n_threads:3d} thr: {r['rps']:8.0f}/s "
                              f"p50 {_fmt(r['p50_ms'], '.2f')} ms peak {r['peak_connections']:3d} "
                              f"rt/cycle {_fmt(r['per_cycle'], '.3f')}"
                              + (f" ERR {r['errors']}" if r["errors"] else ""), flush=True)
    finally:
        for w in workers.values():
            w.close()
        for v in vendors:
            drop_database(targets[v], names)
    rows = aggregate(raw)
    _RAW[:] = raw
    for r in rows:
        pr = probes.get((r["contender"], r["workload"]), {})
        r["wire_round_trips_per_cycle"] = pr.get("round_trips_per_cycle")
        r["wire_connections_per_cycle"] = pr.get("connections_per_cycle")
    import platform

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other work)",
        "servers": [f"{lab} ({targets[v].origin})" for lab, v in zip(labels, sorted(vendors), strict=True)],
        "python": platform.python_version(), **versions(),
        "rounds": args.rounds, "duration": args.duration, "warmup": args.warmup, "threads": threads,
        "elapsed_s": round(time.time() - started, 1), "smoke": args.smoke,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows, "raw": raw}, indent=1))
    with open(out / "results.csv", "w") as f:
        cols = ["vendor", "workload", "threads", "contender", "rps", "ratio_to_floor", "p50_ms", "p99_ms",
                "peak_connections", "cpu_us_per_cycle", "wire_round_trips_per_cycle", "wire_connections_per_cycle",
                "round_trips_per_cycle", "connections_opened_per_cycle", "rounds", "cycles"]
        f.write(",".join(cols) + "\n")
        for r in rows:
            f.write(",".join("" if r[c] is None else str(r[c]) for c in cols) + "\n")
    (out / "results.md").write_text(markdown(rows, meta))
    chart(rows, out / "throughput.png")
    print(f"wrote {out}/results.{{json,csv,md}} and throughput.png in {meta['elapsed_s']} s")
    failed = [r for r in rows if r["errors"]]
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
