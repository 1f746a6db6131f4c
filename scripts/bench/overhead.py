#!/usr/bin/env python
"""Client CPU per request cycle: floor vs a pooled ENGINE, in one process, alternating.

    python scripts/bench/overhead.py [pg|my] [ENGINE]   # default ENGINE: ours
    python scripts/bench/overhead.py pg nullpool        # Django's own connect()/close() cost

Uses the servers on the default local ports (POOL_BENCH_PG_URL / POOL_BENCH_MYSQL_URL
host and port override them) and database "test". Runs 60 pairs of blocks of 300 cycles,
floor and pooled in turn, in thread CPU time (time.thread_time), which other load on the
machine barely moves, unlike throughput; prints the floor's median cost per cycle and the
median (and quartiles) of the per-pair differences: what the ENGINE adds to a cycle.
"""

import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE)] + [str(p) for p in sorted((ROOT / "packages").glob("*/src"))]

vendor = sys.argv[1] if len(sys.argv) > 1 else "pg"
engine = sys.argv[2] if len(sys.argv) > 2 else ("pool_postgresql" if vendor == "pg" else "pool_mysql")
url = urlparse(os.environ.get("POOL_BENCH_PG_URL" if vendor == "pg" else "POOL_BENCH_MYSQL_URL", ""))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

base = {"NAME": "test", "USER": url.username or ("postgres" if vendor == "pg" else "root"),
        "PASSWORD": url.password or "", "HOST": url.hostname or "127.0.0.1",
        "PORT": url.port or (5432 if vendor == "pg" else 3306)}
stock = "django.db.backends.postgresql" if vendor == "pg" else "django.db.backends.mysql"
settings.configure(
    DATABASES={"default": {**base, "ENGINE": stock, "CONN_MAX_AGE": None},
               "other": {**base, "ENGINE": engine, "CONN_MAX_AGE": 0, "POOL_OPTIONS": {"POOL_SIZE": 2}}
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
