#!/usr/bin/env python
"""Where the time goes when many threads share few connections: context switches per request cycle.

    python scripts/bench/contention.py [pg|my] [THREADS] [BOUND ...]    # default: pg 64 64 20 8
    python scripts/bench/contention.py pg 64 20 --options '{"POOL_SIZE": 10, "MAX_OVERFLOW": 10}'
    python scripts/bench/contention.py --child pg 64 20     # one bound only (0: the floor), e.g. under perf stat

For each BOUND, THREADS threads run the trivial request cycle (request_started, SELECT 1,
request_finished) for --seconds (default 5) on one alias of ours with POOL_SIZE=BOUND,
MAX_OVERFLOW=0 (plus --options, JSON); then the same threads on stock Django with
CONN_MAX_AGE=None (the floor, one connection per thread). Prints per cycle: client CPU (user and
system), voluntary and involuntary context switches of the process (getrusage), and the fewest
and most cycles a thread made (the spread shows fairness).

This explains the benchmark's `ours-20` row rather than measuring a target: each BOUND runs in
its own process, one after the other, on the servers on the default local ports
(POOL_BENCH_PG_URL / POOL_BENCH_MYSQL_URL override them, database "test"). Run it alone.
"""

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]


def child(vendor: str, threads: int, bound: int, seconds: float, options: dict) -> None:
    sys.path[:0] = [str(p) for p in sorted((ROOT / "packages").glob("*/src"))]
    import django
    from django.conf import settings

    url = urlparse(os.environ.get("POOL_BENCH_PG_URL" if vendor == "pg" else "POOL_BENCH_MYSQL_URL", ""))
    db = {"NAME": "test", "USER": url.username or ("postgres" if vendor == "pg" else "root"),
          "PASSWORD": url.password or "", "HOST": url.hostname or "127.0.0.1",
          "PORT": url.port or (5432 if vendor == "pg" else 3306)}
    if bound:
        db["ENGINE"] = "pool_postgresql" if vendor == "pg" else "pool_mysql"
        db["POOL_OPTIONS"] = {"POOL_SIZE": bound, "MAX_OVERFLOW": 0, "TIMEOUT": 30, **options}
    else:
        db["ENGINE"] = "django.db.backends.postgresql" if vendor == "pg" else "django.db.backends.mysql"
        db["CONN_MAX_AGE"] = None
    settings.configure(DATABASES={"default": db}, INSTALLED_APPS=[], USE_TZ=True, TIME_ZONE="UTC")
    django.setup()
    from django.core.signals import request_finished, request_started
    from django.db import connection

    stop = threading.Event()
    counts = [0] * threads
    start = threading.Barrier(threads + 1)

    def run(i: int) -> None:
        start.wait()
        n = 0
        while not stop.is_set():
            request_started.send(sender=None)
            with connection.cursor() as c:
                c.execute("SELECT 1")
                c.fetchone()
            request_finished.send(sender=None)
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    start.wait()
    t0, r0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(seconds)
    stop.set()
    for t in workers:
        t.join()
    r1, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - t0
    n = sum(counts)
    label = f"ours, bound {bound}" if bound else "floor (stock, CONN_MAX_AGE=None)"
    print(f"{threads:>3} thr  {label:<34} {n / elapsed:>7.0f}/s  "
          f"cpu {(r1.ru_utime - r0.ru_utime) / n * 1e6:>4.0f} user + {(r1.ru_stime - r0.ru_stime) / n * 1e6:>4.0f} sys µs  "
          f"ctx switches {(r1.ru_nvcsw - r0.ru_nvcsw) / n:>5.1f} vol + {(r1.ru_nivcsw - r0.ru_nivcsw) / n:>4.1f} invol  "
          f"cycles/thread {min(counts)}-{max(counts)}", flush=True)


def main() -> None:
    argv = sys.argv[1:]
    seconds, options = 5.0, "{}"
    if "--seconds" in argv:
        i = argv.index("--seconds")
        seconds = float(argv[i + 1])
        del argv[i:i + 2]
    if "--options" in argv:
        i = argv.index("--options")
        options = argv[i + 1]
        del argv[i:i + 2]
    if "--child" in argv:
        _, vendor, threads, bound = argv
        child(vendor, int(threads), int(bound), seconds, json.loads(options))
        return
    vendor = argv[0] if argv else "pg"
    threads = int(argv[1]) if len(argv) > 1 else 64
    bounds = [int(b) for b in argv[2:]] or [threads, 20, 8]
    for bound in [*bounds, 0]:
        subprocess.run([sys.executable, __file__, "--child", vendor, str(threads), str(bound),
                        "--seconds", str(seconds), "--options", options], check=True)


if __name__ == "__main__":
    main()
