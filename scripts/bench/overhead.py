#!/usr/bin/env python
"""Client CPU per request cycle: floor vs a pooled ENGINE, in one process, alternating.

    python scripts/bench/overhead.py [pg|my] [ENGINE]   # default ENGINE: ours
    python scripts/bench/overhead.py pg nullpool        # Django's own connect()/close() cost

Uses the servers on the default local ports (POOL_BENCH_PG_URL / POOL_BENCH_MYSQL_URL
host and port override them) and database "test". Prints the minimum over 20 blocks of
500 cycles of thread CPU time per cycle (time.thread_time), which other load on the
machine barely moves, unlike throughput.
"""

import os
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
res = {"default": [], "other": []}
for _ in range(20):
    for alias in res:
        t = time.thread_time()
        for _ in range(500):
            cycle(alias)
        res[alias].append((time.thread_time() - t) / 500 * 1e6)
f, o = min(res["default"]), min(res["other"])
print(f"{vendor}: client CPU per request cycle: floor {f:.1f} us, {engine} {o:.1f} us "
      f"(+{o - f:.1f} us, floor/{engine} = {f / o:.2f})")
