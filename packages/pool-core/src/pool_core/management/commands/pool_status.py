"""``manage.py pool_status``: a table (or JSON) of the connection pools' stats.

Pools live in the processes that serve requests. When ``settings.POOL_STATS_DIR``
is set, every process publishes its stats there about once a second and this
command shows all live processes on this host. Without it, the command can only
show its own process: it checks out one connection per pooled alias (so you see
the configuration and that the server answers), unless ``--no-connect``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from pool_core import _housekeeper
from pool_core.mixin import PoolingMixin

COLUMNS = (
    ("pid", "pid"),
    ("alias", "alias"),
    ("vendor", "vendor"),
    ("size", "pool_size"),
    ("overflow", "max_overflow"),
    ("open", "connections_open"),
    ("idle", "connections_idle"),
    ("in use", "connections_checked_out"),
    ("waiting", "threads_waiting"),
    ("checkouts", "checkouts"),
    ("timeouts", "checkout_timeouts"),
    ("created", "connections_created"),
    ("recycled", "connections_recycled"),
    ("broken", "connections_invalidated"),
    ("leaks", "leaks_detected"),
    ("wait p99 ms", "checkout_wait_ms_p99"),
    ("wait max ms", "checkout_wait_ms_max"),
)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return "-" if value is None else str(value)


def render_table(rows: list[dict[str, Any]]) -> str:
    header = [title for title, _ in COLUMNS]
    body = [[_cell(row.get(key)) for _, key in COLUMNS] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Show the connection pools: configuration, connections, waits, counters."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        parser.add_argument(
            "--database",
            action="append",
            dest="aliases",
            metavar="ALIAS",
            help="Only this alias (repeatable).",
        )
        parser.add_argument(
            "--no-connect",
            action="store_true",
            help="Without POOL_STATS_DIR: do not open a connection per pooled alias.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        aliases = options["aliases"]
        for alias in aliases or ():
            if alias not in connections.settings:
                raise CommandError(f"Unknown database alias {alias!r}.")
        directory = _housekeeper.stats_dir()
        source: str
        if directory:
            processes = _housekeeper.read_published(directory)
            source = f"POOL_STATS_DIR={directory}"
        else:
            processes = [self._own_process(aliases, connect=not options["no_connect"])]
            source = "this process only (set POOL_STATS_DIR to see your server's processes)"
        rows = [
            {**stats, "pid": process["pid"]}
            for process in processes
            for alias, stats in sorted(process["pools"].items())
            if not aliases or alias in aliases
        ]
        if options["json"]:
            self.stdout.write(
                json.dumps({"source": source, "processes": processes, "rows": rows}, indent=2, sort_keys=True)
            )
            return
        self.stdout.write(f"Connection pools ({source}):")
        self.stdout.write(render_table(rows) if rows else "(no pools)")

    def _own_process(self, aliases: list[str] | None, connect: bool) -> dict[str, Any]:
        import os
        import socket

        from pool_core import stats

        if connect:
            for alias in aliases or list(connections.settings):
                wrapper = connections[alias]
                if isinstance(wrapper, PoolingMixin):
                    wrapper.ensure_connection()  # type: ignore[attr-defined]
                    wrapper.close()  # type: ignore[attr-defined]
        return {"pid": os.getpid(), "host": socket.gethostname(), "pools": stats()}
