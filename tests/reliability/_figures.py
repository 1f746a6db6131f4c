"""Figures of the reliability scenarios, one JSON line per scenario run.

Every heavy scenario states its figures in the test output and appends them to
a results file; ``scripts/reliability_report.py`` renders that file as the
table in RELIABILITY.md. To add a row from any test (scenarios 8-10 too)::

    from tests.reliability._figures import record

    record(
        "8. session reset",            # scenario, sorts by its leading number
        "postgresql-psycopg3",         # engine id (vendor-driver) or a setup name
        operations=1200,               # requests/transactions attempted
        faults=3,                      # faults injected (kills, restarts, cuts)
        errors=2,                      # operations that raised
        rows_lost=0,                   # committed writes missing afterwards
        peak_connections=8,            # server-side count, sampled during the run
        bound=8,                       # the limit it must stay within
        note="what the errors were",   # optional, free text
    )

The file is ``$POOL_RELIABILITY_RESULTS`` if set, else
``reliability-results.jsonl`` at the repository root. Nothing truncates it:
``scripts/test.sh`` deletes it before the heavy run. Pass None for a figure
that does not apply.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: Rows recorded in this process; the reliability conftest prints them at the end of the run.
SESSION_ROWS: list[dict[str, Any]] = []


def results_path() -> Path:
    return Path(os.environ.get("POOL_RELIABILITY_RESULTS") or ROOT / "reliability-results.jsonl")


def record(scenario: str, setup: str, *, operations: int | None, faults: int | None, errors: int | None,
           rows_lost: int | None, peak_connections: int | None = None, bound: int | None = None,
           note: str = "", **extra: Any) -> dict[str, Any]:
    """Append one row of figures and print it (shown with pytest -s or on failure)."""
    row = {
        "scenario": scenario, "setup": setup, "operations": operations, "faults": faults,
        "errors": errors, "rows_lost": rows_lost, "peak_connections": peak_connections,
        "bound": bound, "note": note, "python": platform.python_version(), "time": time.time(), **extra,
    }
    try:
        import django

        row["django"] = django.get_version()
    except ImportError:
        pass
    SESSION_ROWS.append(row)
    path = results_path()
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
    print("\n" + summary(row))
    return row


def summary(row: dict[str, Any]) -> str:
    figures = ", ".join(
        f"{k}={row[k]}" for k in ("operations", "faults", "errors", "rows_lost", "peak_connections", "bound")
    )
    return f"FIGURES {row['scenario']} [{row['setup']}]: {figures}" + (f" ({row['note']})" if row["note"] else "")
