#!/usr/bin/env python
"""Client CPU per request cycle: floor vs a pooled ENGINE, in one process, alternating.

    python scripts/bench/overhead.py [pg|my] [ENGINE]   # default ENGINE: ours
    python scripts/bench/overhead.py pg nullpool        # Django's own connect()/close() cost
    python scripts/bench/overhead.py pg --instructions  # CPU instructions instead (valgrind)
    python scripts/bench/overhead.py pg --instructions --turns  # transaction mode, connections change hands

Uses the servers on the default local ports (POOL_BENCH_PG_URL / POOL_BENCH_MYSQL_URL
host and port override them) and database "test". Runs 60 pairs of blocks of 300 cycles,
floor and pooled in turn, in thread CPU time (time.thread_time), which other load on the
machine barely moves, unlike throughput; prints the floor's median cost per cycle and the
median (and quartiles) of the per-pair differences: what the ENGINE adds to a cycle.

--instructions counts CPU instructions per cycle under valgrind's callgrind, which is
repeatable whatever else runs on the machine (to about 1 %): for each of floor and pooled,
a run of 300 and a run of 1300 cycles after the same warm-up (every alias connected, the
garbage collector off), and the difference of the two totals over 1000. Slow (about a
minute per run, four runs, two at a time) but exact enough to compare two trees.

--turns (with --instructions) measures the slow view's case instead: two threads take
turns statement by statement through requests of two statements (request_started,
SELECT 1, SELECT 1, request_finished; no sleep), the pooled alias with
CHECKOUT="transaction" and POOL_SIZE=1, so that every statement checks out the
connection the other thread had last (no thread-affine reclaim). Per request.
"""

import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE)] + [str(p) for p in sorted((ROOT / "packages").glob("*/src"))]

turns = "--turns" in sys.argv
args = [a for a in sys.argv[1:] if not a.startswith("--")]
vendor = args[0] if args else "pg"
engine = args[1] if len(args) > 1 else ("pool_postgresql" if vendor == "pg" else "pool_mysql")
url = urlparse(os.environ.get("POOL_BENCH_PG_URL" if vendor == "pg" else "POOL_BENCH_MYSQL_URL", ""))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

base = {"NAME": "test", "USER": url.username or ("postgres" if vendor == "pg" else "root"),
        "PASSWORD": url.password or "", "HOST": url.hostname or "127.0.0.1",
        "PORT": url.port or (5432 if vendor == "pg" else 3306)}
stock = "django.db.backends.postgresql" if vendor == "pg" else "django.db.backends.mysql"
settings.configure(
    DATABASES={"default": {**base, "ENGINE": stock, "CONN_MAX_AGE": None},
               "other": {**base, "ENGINE": engine, "CONN_MAX_AGE": 0,
                         "POOL_OPTIONS": {"POOL_SIZE": 1, "CHECKOUT": "transaction"} if turns else {"POOL_SIZE": 2}}
               if engine.startswith("pool_") else {**base, "ENGINE": engine, "CONN_MAX_AGE": 0}},
    USE_TZ=True, TIME_ZONE="UTC", INSTALLED_APPS=[])
django.setup()
from django.core.signals import request_finished, request_started  # noqa: E402
from django.db import connections  # noqa: E402


def cycle(alias):
    request_started.send(sender=None)
    with connections[alias].cursor() as c:
        c.execute("SELECT 1")
        c.fetchone()
    request_finished.send(sender=None)


def turns_run(alias, n):
    """--turns: *n* requests of two statements on each of two threads taking turns per step."""
    steps = [threading.Semaphore(1), threading.Semaphore(0)]

    def statement():
        with connections[alias].cursor() as c:
            c.execute("SELECT 1")
            c.fetchone()

    def request_start():
        request_started.send(sender=None)
        statement()

    def request_end():
        request_finished.send(sender=None)

    def worker(i):
        for _ in range(n):
            for step in (request_start, statement, request_end):
                steps[i].acquire()
                step()
                steps[1 - i].release()

    threads = [threading.Thread(target=worker, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def count_run(alias, n):
    """--count-run: the same warm-up, then *n* cycles of *alias* (under callgrind)."""
    import gc

    if turns:
        # Each run opens the same connections in its own two threads: the
        # difference of two runs leaves only the requests.
        gc.collect()
        gc.disable()
        turns_run(alias, n)
        return
    for warm in ("default", "other"):
        for _ in range(30):
            cycle(warm)
    gc.collect()
    gc.disable()  # a collection now and then would move the totals by more than the pool costs
    for _ in range(n):
        cycle(alias)


def instructions():
    """CPU instructions per cycle of floor and pooled, from four callgrind runs (two at a time)."""
    import re
    import shutil
    import subprocess

    if shutil.which("valgrind") is None:
        sys.exit("overhead.py: --instructions needs valgrind on PATH (Debian: apt-get install valgrind)")

    def start(alias, n):
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                   __file__, vendor, engine, "--count-run", alias, str(n)] + (["--turns"] if turns else [])
        # A fixed hash seed: dict and set layouts (and their collisions) the same in every run.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)

    def total(process):
        _, err = process.communicate()
        found = re.search(r"Collected : (\d+)", err)
        if process.returncode or not found:
            sys.exit(f"overhead.py: the callgrind run failed:\n{err[-2000:]}")
        return int(found.group(1))

    per_cycle = {}
    for alias in ("default", "other"):
        low, high = start(alias, 300), start(alias, 1300)
        per_cycle[alias] = (total(high) - total(low)) / (2000 if turns else 1000)  # turns: two threads
    f, p = per_cycle["default"], per_cycle["other"]
    what = "request of two statements, two threads taking turns" if turns else "request cycle"
    print(f"{vendor}: CPU instructions per {what}: floor {f:,.0f}; {engine} {p:,.0f}, "
          f"adds {p - f:,.0f} ({(p - f) / f * 100:.1f} %; floor/{engine} = {f / p:.3f})")


if "--count-run" in sys.argv:
    i = sys.argv.index("--count-run")
    count_run(sys.argv[i + 1], int(sys.argv[i + 2]))
    sys.exit(0)
if "--instructions" in sys.argv:
    instructions()
    sys.exit(0)
if turns:
    sys.exit("overhead.py: --turns needs --instructions")

for alias in ("default", "other"):
    for _ in range(300):
        cycle(alias)
floor, added = [], []
for _ in range(60):
    cost = {}
    for alias in ("default", "other"):
        t = time.thread_time()
        for _ in range(300):
            cycle(alias)
        cost[alias] = (time.thread_time() - t) / 300 * 1e6
    floor.append(cost["default"])
    added.append(cost["other"] - cost["default"])
f, a = statistics.median(floor), statistics.median(added)
q1, _, q3 = statistics.quantiles(added)
print(f"{vendor}: client CPU per request cycle: floor {f:.1f} us; {engine} adds {a:.1f} us "
      f"(quartiles {q1:.1f}..{q3:.1f}; floor/{engine} = {f / (f + a):.2f})")
