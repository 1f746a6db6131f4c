"""Entry point of ``python -m demo``; see the package docstring."""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from . import server as pgserver
from .bench import LoadResult, Monitor, request, run_load

POOL_OPTIONS = {"POOL_SIZE": 4, "MAX_OVERFLOW": 4}  # TIMEOUT: the default 30 s
SCENARIOS = [  # (alias, engine, what is shown)
    ("direct", "django.db.backends.postgresql", "CONN_MAX_AGE=0: one new connection per request"),
    ("pooled", "pool_postgresql", "POOL_SIZE=4, MAX_OVERFLOW=4: connections reused"),
]
STATS_KEYS = (
    "connections_created",
    "checkouts",
    "connections_open",
    "connections_closed",
    "checkout_wait_ms_max",
)


class DemoError(Exception):
    """A failure with a message that says it all."""


@dataclass
class Outcome:
    alias: str
    engine: str
    load: LoadResult
    peak: int
    opened: int | None


def configure_django(params: dict[str, str]) -> None:
    import django
    from django.conf import settings

    rest = {k: v for k, v in params.items() if k not in ("dbname", "user", "password", "host", "port")}

    def database(engine: str, **extra: Any) -> dict[str, Any]:
        return {
            "ENGINE": engine,
            "NAME": params["dbname"],
            "USER": params.get("user", ""),
            "PASSWORD": params.get("password", ""),
            "HOST": params.get("host", ""),
            "PORT": params.get("port", ""),
            "OPTIONS": dict(rest),
            "CONN_MAX_AGE": 0,
            **extra,
        }

    databases = {"default": database("django.db.backends.postgresql")}
    for alias, engine, _ in SCENARIOS:
        databases[alias] = database(engine, **({"POOL_OPTIONS": POOL_OPTIONS} if alias == "pooled" else {}))
    settings.configure(
        DEBUG=False,
        SECRET_KEY="demo-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="demo.web",
        INSTALLED_APPS=["demo"],
        MIDDLEWARE=[],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DATABASES=databases,
        DEBUG_PROPAGATE_EXCEPTIONS=True,  # a failing view raises in the load thread, with its message
    )
    django.setup()


def prepare_schema() -> None:
    from django.core.management import call_command
    from django.db import connections

    from .models import Item
    from .web import SEED_ITEMS

    call_command("migrate", run_syncdb=True, verbosity=0)
    Item.objects.bulk_create(Item(name=f"item-{i}", qty=0) for i in range(SEED_ITEMS))
    connections["default"].close()


def total_qty(monitor: Monitor) -> int:
    from .models import Item

    return int(monitor.scalar(f'SELECT coalesce(sum(qty), 0) FROM "{Item._meta.db_table}"'))


def pooled_open() -> int:
    """Connections the pools keep open: the server still sees these after a scenario."""
    import pool_core

    return sum(s["connections_open"] for s in pool_core.stats().values())


def run_scenario(
    label: str,
    alias: str,
    engine: str,
    what: str,
    handler: Any,
    monitor: Monitor,
    requests: int,
    workers: int,
) -> Outcome:
    import pool_core

    print(f"\n[{label}] {alias}: {engine} ({what})")
    qty0, sessions0 = total_qty(monitor), monitor.settled_sessions(pooled_open())
    monitor.reset_peak()
    load = run_load(handler, f"/hit/{alias}/", requests, workers)
    peak = monitor.peak()
    if load.errors:
        raise DemoError(
            f"{len(load.errors)} of {requests} requests failed on {alias!r}; first: {load.errors[0]}"
        )
    grown = total_qty(monitor) - qty0
    if grown != requests:
        raise DemoError(f"{alias!r}: {requests} requests committed, but the qty total grew by {grown}")
    stats = pool_core.stats(alias)
    sessions1 = monitor.settled_sessions(pooled_open())
    opened = None if sessions0 is None or sessions1 is None else sessions1 - sessions0
    print(
        f"    {requests} requests, {workers} threads: {load.seconds:.2f} s, "
        f"{requests / load.seconds:.0f} req/s, p50 {load.percentile(0.5) * 1e3:.1f} ms, "
        f"p99 {load.percentile(0.99) * 1e3:.1f} ms"
    )
    print(
        f"    server connections: peak {peak} at once, "
        f"{'n/a (PostgreSQL < 14)' if opened is None else opened} opened"
    )
    if stats is not None:
        print(
            f"    pool_core.stats({alias!r}): "
            + ", ".join(
                f"{k}={stats[k]:.1f}" if isinstance(stats[k], float) else f"{k}={stats[k]}"
                for k in STATS_KEYS
            )
        )
    return Outcome(alias, engine, load, peak, opened)


def print_summary(outcomes: list[Outcome]) -> None:
    print(
        f"\n{'scenario':<9} {'engine':<31} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'peak conns':>10} {'conns opened':>12}"
    )
    for o in outcomes:
        print(
            f"{o.alias:<9} {o.engine:<31} {len(o.load.latencies) / o.load.seconds:>7.0f} "
            f"{o.load.percentile(0.5) * 1e3:>7.1f} {o.load.percentile(0.99) * 1e3:>7.1f} "
            f"{o.peak:>10} {'n/a' if o.opened is None else o.opened:>12}"
        )
    direct, pooled = outcomes

    def ratio(q: float) -> str:
        r = direct.load.percentile(q) / pooled.load.percentile(q)
        return f"{r:.1f}x lower" if r >= 1 else f"{1 / r:.1f}x HIGHER"

    print(
        f"\nspeed-up, pooled vs direct: {direct.load.seconds / pooled.load.seconds:.2f}x throughput; "
        f"p50 {ratio(0.5)}, p99 {ratio(0.99)}; peak server connections {direct.peak} -> {pooled.peak}"
    )
    if pooled.load.percentile(0.99) > direct.load.percentile(0.99):
        print(
            "note: the pooled p99 is checkout wait. SQLAlchemy's QueuePool is not first come,\n"
            "      first served: a thread giving a connection back can take it again ahead of\n"
            "      threads already waiting (sqlalchemy issue 7679), so a few requests wait far\n"
            "      longer than the rest (see checkout_wait_ms_max)."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario")
    parser.add_argument("--workers", type=int, default=32, help="concurrent client threads")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.workers < 1:
        parser.error("--requests and --workers must be >= 1")

    def on_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.perf_counter()
    server: pgserver.Server | None = None
    monitor: Monitor | None = None
    try:
        server = pgserver.start()
        print(f"demo: {server.description}")
        configure_django(dict(server.params))
        prepare_schema()
        monitor = Monitor(server.params)
        import django
        import psycopg
        from django.core.handlers.wsgi import WSGIHandler

        print(
            f"demo: PostgreSQL {monitor.server_version // 10000}.{monitor.server_version % 10000}, "
            f"Python {sys.version.split()[0]}, Django {django.__version__}, psycopg {psycopg.__version__}"
        )
        handler = WSGIHandler()
        for _ in range(20):  # warm up Django (URL resolver, model and driver set-up), not measured
            request(handler, "/hit/default/")
        outcomes = [
            run_scenario(
                chr(ord("a") + i), alias, engine, what, handler, monitor, args.requests, args.workers
            )
            for i, (alias, engine, what) in enumerate(SCENARIOS)
        ]
        print_summary(outcomes)
        print(f"\ndemo: OK in {time.perf_counter() - started:.1f} s")
        return 0
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        return 130
    except (DemoError, pgserver.ServerError) as e:
        print(f"\ndemo: FAILED: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        traceback.print_exc()
        print(f"\ndemo: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if monitor is not None:
            monitor.close()
        if "django.db" in sys.modules:
            try:
                from django.db import connections

                import pool_core

                connections.close_all()
                pool_core.dispose()
            except Exception:
                pass
        if server is not None:
            server.stop()
            print("demo: database removed")


if __name__ == "__main__":
    sys.exit(main())
