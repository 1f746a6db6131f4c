"""``manage.py pool_status``: a table (or JSON) of the connection pools' stats.

Pools live in the processes that serve requests. When ``settings.POOL_STATS_DIR``
is set, every process publishes its stats there about once a second and this
command shows all live processes on this host. Without it, the command can only
show its own process: it checks out one connection per pooled alias (so you see
the configuration and that the server answers), unless ``--no-connect``.

A pooled alias whose settings are invalid (POOL_OPTIONS, CONNECT_TIMEOUT) or,
when connecting, whose server cannot be reached gets a row with its error
(``error`` in JSON); the other aliases are shown as usual. The command then
exits with status 1 (a CommandError naming the broken aliases), so scripts
and probes notice, after printing everything.
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from pool_core import _housekeeper
from pool_core._masking import mask_password
from pool_core.mixin import PoolingMixin
from pool_core.options import check_connect_timeout, parse_options

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
    return "-" if value is None else " ".join(str(value).split())  # one line per row


def render_table(rows: list[dict[str, Any]]) -> str:
    columns: tuple[tuple[str, str], ...] = COLUMNS
    if any(row.get("error") for row in rows):
        columns = (*COLUMNS, ("error", "error"))
    header = [title for title, _ in columns]
    body = [[_cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    if len(columns) > len(COLUMNS):
        widths[-1] = len(header[-1])  # the error text is left-aligned, not padded
    lines = [
        "  ".join(_align(h, w, i, len(columns)) for i, (h, w) in enumerate(zip(header, widths, strict=True)))
    ]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(_align(c, w, i, len(columns)) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in body
    ]
    return "\n".join(line.rstrip() for line in lines)


def _align(text: str, width: int, index: int, count: int) -> str:
    if count > len(COLUMNS) and index == count - 1:
        return text  # error column
    return text.rjust(width)


def _alias_error(alias: str) -> tuple[bool, str | None]:
    """(pooled, the alias's configuration error or None), without connecting."""
    try:
        wrapper = connections[alias]
    except Exception as e:  # noqa: BLE001  (an unloadable ENGINE: show it, go on)
        return True, f"{type(e).__name__}: {e}"
    if not isinstance(wrapper, PoolingMixin):
        return False, None
    try:
        options = parse_options(alias, wrapper.settings_dict.get("POOL_OPTIONS"))
        driver = getattr(wrapper.Database, "__name__", wrapper.pool_vendor_name)
        check_connect_timeout(alias, options, wrapper.pool_connect_timeout_max(), driver)
    except Exception as e:  # noqa: BLE001
        return True, str(e)
    return True, None


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
        errors: dict[str, str] = {}
        if directory:
            processes = _housekeeper.read_published(directory)
            source = f"POOL_STATS_DIR={directory}"
            self._check_aliases(aliases, False, errors)
        else:
            processes = [self._own_process(aliases, not options["no_connect"], errors)]
            source = "this process only (set POOL_STATS_DIR to see your server's processes)"
        rows = [
            {**stats, "pid": process["pid"]}
            for process in processes
            for alias, stats in sorted(process["pools"].items())
            if not aliases or alias in aliases
        ]
        own_pid = os.getpid()
        for alias, error in sorted(errors.items()):
            mine = [row for row in rows if row.get("alias") == alias and row.get("pid") == own_pid]
            for row in mine:
                row["error"] = error
            if not mine:
                try:
                    vendor = getattr(connections[alias], "pool_vendor_name", None)
                except Exception:  # noqa: BLE001  (its error is the row's point)
                    vendor = None
                rows.append({"pid": own_pid, "alias": alias, "vendor": vendor, "error": error})
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"source": source, "processes": processes, "rows": rows, "errors": errors},
                    indent=2,
                    sort_keys=True,
                )
            )
        else:
            self.stdout.write(f"Connection pools ({source}):")
            self.stdout.write(render_table(rows) if rows else "(no pools)")
        if errors:
            raise CommandError(
                f"{len(errors)} database alias(es) misconfigured or unreachable: "
                + ", ".join(repr(a) for a in sorted(errors))
                + " (see their rows).",
                returncode=1,
            )

    def _check_aliases(self, aliases: list[str] | None, connect: bool, errors: dict[str, str]) -> None:
        """Fill *errors* with each pooled alias's error; connect to the others if asked."""
        for alias in aliases or list(connections.settings):
            pooled, error = _alias_error(alias)
            if pooled and error is None and connect:
                wrapper = connections[alias]
                try:
                    wrapper.ensure_connection()
                except Exception as e:  # noqa: BLE001  (shown in the alias's row)
                    error = str(e)
                finally:
                    wrapper.close()
            if error is not None:
                password = connections.settings.get(alias, {}).get("PASSWORD")
                errors[alias] = mask_password(error, password)

    def _own_process(
        self, aliases: list[str] | None, connect: bool, errors: dict[str, str]
    ) -> dict[str, Any]:
        import socket

        from pool_core import stats

        self._check_aliases(aliases, connect, errors)
        return {"pid": os.getpid(), "host": socket.gethostname(), "pools": stats()}
