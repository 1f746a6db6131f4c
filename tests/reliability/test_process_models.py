"""Scenario 5, process models: gunicorn (sync --preload, gthread, gevent),
uvicorn (ASGI, async views through sync_to_async), multiprocessing and
Celery-style (billiard) prefork children.

Every request or task checks a connection out, writes a row, asks the server
which session served it and returns it; each process logs
``(pid, server session, start, end)``. Afterwards: no server session served two
processes at overlapping times (no socket shared across processes), the
server never saw more than processes x (POOL_SIZE + MAX_OVERFLOW) sessions
(sampled during the load), no request failed and no row is missing.
HTTP load comes from wrk (hundreds of concurrent connections).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from django.db import connections

import pool_core
from tests.conftest import MYSQL_DRIVER, PG_DRIVER
from tests.reliability._figures import record
from tests.reliability.conftest import VENDORS, Monitor, drop_engine, make_engine, shared_server
from tests.testapp.models import Note

pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[2]
SIZE, OVERFLOW, WORKERS = 2, 2, 2
CONCURRENCY, SECONDS = 200, 3
PER_PROCESS = SIZE + OVERFLOW

MODELS = {
    # name: (command after the python executable, url path, the master uses the ORM before fork)
    "gunicorn sync --preload": (["-m", "gunicorn", "-k", "sync", "--preload"], "/write", True),
    "gunicorn gthread": (["-m", "gunicorn", "-k", "gthread", "--threads", "8"], "/write", False),
    "gunicorn gevent": (["-m", "gunicorn", "-k", "gevent", "--worker-connections", "1000"], "/write", False),
    "uvicorn ASGI": (["-m", "uvicorn", "tests.reliability.webapp.asgi:application", "--no-access-log",
                      "--log-level", "warning"], "/awrite", False),
}


@pytest.fixture(params=VENDORS)
def eng(request, fresh_pools):
    e = make_engine(shared_server(request.param), request.param, "pm")
    yield e
    drop_engine(e)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _site_env(eng, logdir: str, model: str) -> dict[str, str]:
    db = eng.settings()
    db["POOL_OPTIONS"] = {"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": 120}
    mysql_driver = MYSQL_DRIVER
    if "gevent" in model:
        mysql_driver = "pymysql"  # mysqlclient's C calls would block the gevent hub
    env = dict(os.environ, POOL_SITE_DB=json.dumps(db), POOL_SITE_LOG=logdir, POOL_SITE_PG_DRIVER=PG_DRIVER,
               POOL_SITE_MYSQL_DRIVER=mysql_driver, DJANGO_SETTINGS_MODULE="tests.reliability.webapp.settings",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return env


def _wait_http(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not answering after {seconds} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def _wrk(url: str) -> dict[str, int]:
    out = subprocess.run(["wrk", "-t2", f"-c{CONCURRENCY}", f"-d{SECONDS}s", "--timeout", "60s", url],
                         capture_output=True, text=True, timeout=SECONDS + 120).stdout
    m = re.search(r"(\d+) requests in", out)
    assert m, out
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": int(m.group(1)), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0, "output": out}


#: A fixed burst after the timed wrk run: wrk counts only the responses that complete
#: within its SECONDS, which on a loaded machine can be none; the burst's responses
#: are a count the test can rely on, whatever the machine's speed.
BURST, BURST_THREADS = 40, 16


def _burst(url: str) -> int:
    """BURST requests, BURST_THREADS at a time; every one must answer 200 (each has 120 s)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> int:
        with urllib.request.urlopen(url, timeout=120) as response:
            response.read()
            return response.status

    with ThreadPoolExecutor(BURST_THREADS) as pool:
        statuses = list(pool.map(one, range(BURST)))
    assert statuses == [200] * BURST, statuses
    return len(statuses)


def check_logs(logdir: str) -> dict:
    """Read every process's request log; find server sessions used by two processes at once."""
    ok, errors = [], []
    for path in Path(logdir).glob("*.log"):
        for line in path.read_text().splitlines():
            parts = line.split(" ")
            if parts[0] == "OK":
                ok.append((int(parts[1]), int(parts[2]), float(parts[3]), float(parts[4]), parts[5],
                           int(parts[6])))
            elif parts[0] == "ERR":
                errors.append(line)
    by_backend: dict[int, list[tuple]] = defaultdict(list)
    for pid, backend, t0, t1, _tag, _open in ok:
        by_backend[backend].append((t0, t1, pid))
    overlaps = []
    for backend, uses in by_backend.items():
        uses.sort()
        for i, (_t0, t1, pid) in enumerate(uses):
            for u0, _u1, other in uses[i + 1:]:
                if u0 >= t1:
                    break
                if other != pid:
                    overlaps.append((backend, pid, other))
    pids = {r[0] for r in ok}
    return {"ok": ok, "errors": errors, "overlaps": overlaps, "pids": pids,
            "multi_pid_backends": sum(1 for uses in by_backend.values() if len({u[2] for u in uses}) > 1),
            "max_open_per_process": max((r[5] for r in ok), default=0), "tags": {r[4] for r in ok}}


def _rows(alias: str) -> set[str]:
    tags = set(Note.objects.using(alias).values_list("text", flat=True))
    connections[alias].close()
    return tags


@pytest.mark.parametrize("model", list(MODELS))
def test_web_server_process_model(eng, model, tmp_path):
    args, path, master_uses_orm = MODELS[model]
    logdir = str(tmp_path)
    port = _free_port()
    cmd = [sys.executable, *args]
    if "gunicorn" in model:
        cmd += ["tests.reliability.webapp.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", str(WORKERS),
                "--timeout", "120", "--graceful-timeout", "20", "--log-level", "warning"]
    else:
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    env = _site_env(eng, logdir, model)
    if master_uses_orm:
        env["POOL_SITE_PRELOAD_QUERY"] = "1"
    processes = WORKERS + (1 if master_uses_orm else 0)
    bound = processes * PER_PROCESS
    url = f"http://127.0.0.1:{port}{path}"
    with Monitor(eng) as mon, open(tmp_path / "server.out", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            _wait_http(url, proc)
            load = _wrk(url)
            burst = _burst(url)
        finally:
            _stop(proc)
    server_out = (tmp_path / "server.out").read_text(errors="replace")
    result = check_logs(logdir)
    lost = len(result["tags"] - _rows(eng.alias))
    assert result["errors"] == [], result["errors"][:5]
    assert load["non2xx"] == 0 and load["socket_errors"] == 0, load["output"]
    assert burst == BURST
    assert len(result["ok"]) >= load["requests"] + burst
    assert result["overlaps"] == [], result["overlaps"][:5]
    # The kernel spreads accepts over the workers as it likes; usually both serve.
    assert 1 <= len(result["pids"]) <= WORKERS, (result["pids"], server_out[-2000:])
    assert result["max_open_per_process"] <= PER_PROCESS
    assert lost == 0
    assert 0 < mon.peak <= bound, (mon.peak, bound)
    if "sync" not in model:
        # Threads / greenlets / the event loop's executor really overlapped:
        # more sessions at once than processes, all through one pool each.
        assert mon.peak > WORKERS
    record("5. process models", f"{model} / {eng.id}", operations=len(result["ok"]), faults=None,
           errors=len(result["errors"]) + load["non2xx"] + load["socket_errors"], rows_lost=lost,
           peak_connections=mon.peak, bound=bound, peak_raw=mon.peak_raw,
           note=f"{WORKERS} workers x pool {SIZE}+{OVERFLOW}" + (" + the master (used the ORM before fork)"
                                                                  if master_uses_orm else "")
                + f"; wrk -c{CONCURRENCY} {SECONDS}s: {load['requests']} responses; "
                  f"{len(result['pids'])} workers served; {len(mon.sessions_seen)} server sessions, "
                  f"0 used by two processes at once; raw server-side peak incl. sessions closing: {mon.peak_raw}")


# -- multiprocessing and Celery-style prefork children ------------------------------

def _task(alias: str, i: int) -> tuple:
    from django.db import connections as conns

    pid = os.getpid()
    tag = f"t-{pid}-{i}"
    t0 = time.monotonic()
    Note.objects.using(alias).create(text=tag, n=i)
    with conns[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()" if conns[alias].vendor == "postgresql" else "SELECT CONNECTION_ID()")
        backend = int(cursor.fetchone()[0])
    opened = pool_core.stats(alias)["connections_open"]
    conns[alias].close()  # Celery's Django fixup closes connections after each task
    return pid, backend, t0, time.monotonic(), tag, opened


CHILD_MODELS = ["multiprocessing fork pool", "billiard prefork (Celery)"]


@pytest.mark.parametrize("model", CHILD_MODELS)
def test_child_process_model(eng, model, tmp_path):
    alias = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": 120})
    children, tasks = 4, 400
    # The parent uses the ORM first and keeps a connection checked out across the fork.
    Note.objects.using(alias).create(text="parent-before-fork")
    parent_backend = eng.backend_id(alias)
    if model.startswith("billiard"):
        import billiard

        pool = billiard.Pool(children, maxtasksperchild=25)
    else:
        pool = multiprocessing.get_context("fork").Pool(children, maxtasksperchild=25)
    with Monitor(eng) as mon:
        try:
            results = pool.starmap(_task, [(alias, i) for i in range(tasks)], chunksize=4)
        finally:
            pool.close()
            pool.join()
        assert eng.backend_id(alias) == parent_backend  # the parent's session survived its children
    connections[alias].close()
    logdir = tmp_path
    with open(logdir / "tasks.log", "w") as f:
        for pid, backend, t0, t1, tag, opened in results:
            f.write(f"OK {pid} {backend} {t0:.6f} {t1:.6f} {tag} {opened}\n")
    result = check_logs(str(logdir))
    lost = len(result["tags"] - _rows(alias))
    # maxtasksperchild replaces children along the way: count the processes that really ran.
    processes = len(result["pids"]) + 1
    bound = (children + 1) * PER_PROCESS
    assert len(results) == tasks
    assert parent_backend not in {r[1] for r in results}
    assert result["overlaps"] == []
    assert result["max_open_per_process"] <= PER_PROCESS
    assert lost == 0
    assert mon.peak <= bound
    record("5. process models", f"{model} / {eng.id}", operations=tasks, faults=None, errors=0, rows_lost=lost,
           peak_connections=mon.peak, bound=bound, peak_raw=mon.peak_raw,
           note=f"{children} children at a time ({processes - 1} over the run, maxtasksperchild=25) + the parent "
                f"holding a checkout across fork, pool {SIZE}+{OVERFLOW} each; parent's session untouched; "
                f"0 sessions used by two processes at once")
