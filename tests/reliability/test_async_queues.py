"""Scenario 5, task queues and async: a real Celery prefork worker, and
uvicorn async views calling the ORM through ``sync_to_async`` with both
``thread_sensitive`` values.

Celery: ``celery worker --pool=prefork`` on the local Redis (a queue and a key
prefix of this run only); its main process uses the ORM and keeps that
connection checked out before it forks the children. Each task writes a row
and reports the server session that served it. Asserted: every child kept its
pool across tasks (sessions per child within the bound, far fewer than its
tasks), no session served two processes, the children never used the main
process's session (which survives them), no row is missing, and the sessions of
exited children (``--max-tasks-per-child`` recycling, then worker shutdown)
disappear from the server.

ASGI: uvicorn serves async views that call the ORM through ``sync_to_async``
without closing the connection themselves, under wrk load. With
``thread_sensitive=True`` the ORM runs in the request's own thread and
Django's request_finished returns the connection; with
``thread_sensitive=False`` it runs in a shared executor thread that
request_finished never visits: the view must close it (``ants_closed``),
otherwise the slot stays pinned in that thread, and the pool names the thread
in a WARNING (``ants``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from tests.reliability._figures import record
from tests.reliability.conftest import VENDORS, Monitor, drop_engine, make_engine, shared_server, wait_until
from tests.reliability.test_process_models import (
    OVERFLOW,
    PER_PROCESS,
    ROOT,
    SIZE,
    _free_port,
    _rows,
    _site_env,
    _stop,
    _wait_http,
    _wrk,
    check_logs,
)

pytestmark = pytest.mark.heavy

REDIS = os.environ.get("POOL_TEST_REDIS", "redis://127.0.0.1:6379/0")
CONCURRENCY, TASKS, PER_CHILD = 2, 100, 10


@pytest.fixture(params=VENDORS)
def eng(request, fresh_pools):
    e = make_engine(shared_server(request.param), request.param, "aq")
    yield e
    drop_engine(e)


def _redis():
    import redis

    client = redis.Redis.from_url(REDIS, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as e:  # the machine provides Redis: fail loudly, never skip
        raise AssertionError(f"the Celery scenario needs Redis at {REDIS} (POOL_TEST_REDIS): {e}") from e
    return client


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_celery_prefork_worker(eng, tmp_path):
    from celery import Celery

    client = _redis()
    run = uuid.uuid4().hex[:12]
    queue, prefix = f"pool-rel-{run}", f"pool-rel-{run}:"
    logdir = str(tmp_path)
    env = _site_env(eng, logdir, "celery")
    env.update(POOL_CELERY_BROKER=REDIS, POOL_CELERY_QUEUE=queue, POOL_CELERY_PREFIX=prefix,
               POOL_CELERY_MAIN_HOLDS="1")
    cmd = [sys.executable, "-m", "celery", "-A", "tests.reliability.webapp.tasks:app", "worker",
           "--pool=prefork", f"--concurrency={CONCURRENCY}", f"--max-tasks-per-child={PER_CHILD}",
           "-Q", queue, "-n", f"{run}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
           "--loglevel=warning"]
    sender = Celery("pool_reliability_sender", set_as_current=False, fixups=[])
    sender.conf.update(broker_url=REDIS, broker_transport_options={"global_keyprefix": prefix},
                       task_default_queue=queue, task_ignore_result=True)
    bound = (CONCURRENCY + 1) * PER_PROCESS
    main_file = tmp_path / "main.backend"

    def done() -> int:
        return sum(len(p.read_text().splitlines()) for p in tmp_path.glob("*.log"))

    with Monitor(eng) as mon, open(tmp_path / "worker.out", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            for i in range(TASKS):
                sender.send_task("orm_task", args=(i,), queue=queue)
            sender.close()

            def finished() -> bool:
                assert proc.poll() is None, (tmp_path / "worker.out").read_text(errors="replace")[-3000:]
                return done() >= TASKS

            wait_until(finished, 45, f"{TASKS} Celery tasks")
            main_pid, main_backend = map(int, main_file.read_text().split())
            assert main_pid == proc.pid
            result = check_logs(logdir)
            exited = {pid for pid in result["pids"] if not _alive(pid)}
            exited_backends = {r[1] for r in result["ok"] if r[0] in exited}
            # Children replaced by --max-tasks-per-child: their sessions end with them.
            wait_until(lambda: not (exited_backends & eng.server_sessions()), 20,
                       "the sessions of recycled children to close")
            # The main process's session survived every child's start and exit.
            assert main_backend in eng.server_sessions()
        finally:
            _stop(proc)
        wait_until(lambda: not eng.server_sessions(), 20, "every session of the worker to close after shutdown")
    worker_out = (tmp_path / "worker.out").read_text(errors="replace")
    try:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()
    result = check_logs(logdir)
    lost = len(result["tags"] - _rows(eng.alias))
    backends_of: dict[int, set[int]] = defaultdict(set)
    pids_of: dict[int, set[int]] = defaultdict(set)
    for pid, backend, *_ in result["ok"]:
        backends_of[pid].add(backend)
        pids_of[backend].add(pid)
    children = len(result["pids"])
    sessions = sum(len(b) for b in backends_of.values())
    assert result["errors"] == [], result["errors"][:5]
    assert len(result["ok"]) == TASKS, worker_out[-3000:]
    assert main_pid not in result["pids"]
    assert children >= TASKS // PER_CHILD  # the children really were recycled
    # Each child kept its pool across its tasks: within the bound, far fewer sessions than tasks.
    assert max(len(b) for b in backends_of.values()) <= PER_PROCESS
    assert sessions < TASKS // 4, dict(backends_of)
    # No session served two processes; the children never touched the main process's session.
    assert [b for b, pids in pids_of.items() if len(pids) > 1] == []
    assert main_backend not in pids_of
    # Every session the server showed during the run was a child's or the main process's.
    assert mon.sessions_seen <= set(pids_of) | {main_backend}, mon.sessions_seen - set(pids_of)
    assert result["max_open_per_process"] <= PER_PROCESS
    assert lost == 0
    assert 0 < mon.peak <= bound, (mon.peak, bound)
    record("5. process models", f"Celery prefork worker (Redis) / {eng.id}", operations=TASKS, faults=None,
           errors=0, rows_lost=lost, peak_connections=mon.peak, bound=bound, peak_raw=mon.peak_raw,
           note=f"celery worker --pool=prefork --concurrency={CONCURRENCY} --max-tasks-per-child={PER_CHILD}, "
                f"pool {SIZE}+{OVERFLOW}; the main process holds a checkout across every fork; "
                f"{children} children over the run used {sessions} sessions in all (max "
                f"{max(len(b) for b in backends_of.values())} per child), 0 shared between processes, "
                f"the main's session untouched; exited children's sessions all closed (recycling and shutdown)")


ASGI_VIEWS = {
    # url path: (description, the view closes its connection itself)
    "/ats": ("sync_to_async(thread_sensitive=True)", False),
    "/ants_closed": ("sync_to_async(thread_sensitive=False), the function closes its connection", True),
    "/ants": ("sync_to_async(thread_sensitive=False), no close", False),
}
PINNED_WARNING = "keeps a connection checked out while it waits for work in a thread pool executor"


def _threads_of(proc: subprocess.Popen, out_path: Path) -> str:
    """The server's output, ending with every thread's stack (faulthandler: see webapp/settings).

    A server that crashed printed them itself; one that runs is sent SIGUSR1.
    """
    if proc.poll() is not None:
        return f"(the server exited with {proc.returncode})\n" + out_path.read_text(errors="replace")[-12000:]
    before = len(out_path.read_bytes())
    proc.send_signal(signal.SIGUSR1)
    try:
        wait_until(lambda: b"most recent call first" in out_path.read_bytes()[before:], 10, "the thread dump")
    except AssertionError as e:
        return f"({e})\n" + out_path.read_text(errors="replace")[-3000:]
    return out_path.read_text(errors="replace")[-12000:]


def _stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("path", list(ASGI_VIEWS))
def test_asgi_sync_to_async(eng, path, tmp_path):
    what, _closes = ASGI_VIEWS[path]
    logdir = str(tmp_path)
    port = _free_port()
    env = _site_env(eng, logdir, "uvicorn")
    db = json.loads(env["POOL_SITE_DB"])
    # LEAK_DETECTION_THRESHOLD (far above any request) runs the housekeeper, which looks for pinned slots.
    db["POOL_OPTIONS"].update(TIMEOUT=5 if path == "/ants" else 120, LEAK_DETECTION_THRESHOLD=300)
    env["POOL_SITE_DB"] = json.dumps(db)
    cmd = [sys.executable, "-m", "uvicorn", "tests.reliability.webapp.asgi:application", "--no-access-log",
           "--log-level", "warning", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    bound = PER_PROCESS
    url = f"http://127.0.0.1:{port}{path}"
    out_path = tmp_path / "server.out"
    with Monitor(eng) as mon, open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            _wait_http(f"http://127.0.0.1:{port}/stats", proc)
            load = _wrk(url)
            if path == "/ants":
                # Executor threads keep their checkouts after the load: the pool says so, naming the thread.
                def warned() -> bool:
                    assert proc.poll() is None, "the server exited"  # its output: below
                    return PINNED_WARNING in out_path.read_text(errors="replace")

                try:
                    wait_until(warned, 60, "the pinned-slot warning")
                except AssertionError as e:  # who holds what, and where each thread is
                    try:
                        held = json.dumps(_stats(port), indent=1)
                    except OSError as no_answer:
                        held = f"no answer: {no_answer}"
                    raise AssertionError(f"{e}; stats: {held}; server output and threads: "
                                         f"{_threads_of(proc, out_path)}") from None
                checked_out = _stats(port)["connections_checked_out"]
            else:
                last: list[dict] = []

                def returned() -> bool:
                    assert proc.poll() is None, "the server exited"  # its output: below
                    try:  # requests wrk gave up on may still be queued in the server
                        last[:] = [_stats(port)]
                    except OSError:
                        return False
                    return last[0]["connections_checked_out"] == 0

                try:
                    wait_until(returned, 90, "every connection back in the pool after the load")
                except AssertionError as e:
                    raise AssertionError(f"{e}; last stats: {json.dumps(last, indent=1)}; server output and "
                                         f"threads: {_threads_of(proc, out_path)}") from None
                checked_out = 0
            stats = _stats(port)
        finally:
            _stop(proc)
    server_out = out_path.read_text(errors="replace")
    result = check_logs(logdir)
    lost = len(result["tags"] - _rows(eng.alias))
    assert result["overlaps"] == [], result["overlaps"][:5]
    assert result["max_open_per_process"] <= PER_PROCESS
    assert lost == 0
    assert 0 < mon.peak <= bound, (mon.peak, bound)
    assert stats["connections_open"] <= bound
    pinned_threads = sorted(set(re.findall(r"thread '([^']+)' keeps a connection checked out", server_out)))
    if path == "/ants":
        # Django closes connections at request end in the request's thread only: the executor
        # threads keep theirs (slots pinned), and requests beyond the free slots time out.
        assert result["ok"], server_out[-3000:]
        assert 0 < checked_out <= bound
        assert pinned_threads and "MainThread" not in pinned_threads, server_out[-3000:]
        errors = load["non2xx"] + load["socket_errors"]
    else:
        assert load["non2xx"] == 0 and load["socket_errors"] == 0, load["output"]
        assert result["errors"] == [], result["errors"][:5]
        assert len(result["ok"]) >= load["requests"] > 0
        assert PINNED_WARNING not in server_out, server_out[-3000:]
        errors = 0
    note = (f"uvicorn, 1 worker, async view -> {what}; pool {SIZE}+{OVERFLOW}; wrk -c200 3s: "
            f"{load['requests']} responses; checked out after the load: {checked_out}")
    if path == "/ants":
        note += (f" (slots pinned in executor threads {', '.join(pinned_threads)}, each named in a WARNING; "
                 f"the other requests waited TIMEOUT=5 s: {errors} errors)")
    else:
        note += " (every connection returned at request end)"
    record("5. process models", f"uvicorn {what} / {eng.id}", operations=load["requests"], faults=None,
           errors=errors, rows_lost=lost, peak_connections=mon.peak, bound=bound, peak_raw=mon.peak_raw,
           note=note)
