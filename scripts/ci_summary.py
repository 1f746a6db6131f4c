"""Sum every pytest run of a CI run; print one line per run, then the total as the last line.

    python scripts/ci_summary.py RESULTS_DIR [--status N]

RESULTS_DIR holds what tests/_ci_results.py left per pytest run (junit XML,
start marker, exit status). *--status* is the exit status of the CI script
itself (a failed lint, hatch or release step). The last line is exactly

    total: N passed, N failed, N skipped

(failed = failures + errors). Exits 1 if anything failed or errored, if a
pytest run exited non-zero (5: no tests collected) or never finished, if
--status is non-zero, or if no test passed at all; else 0. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import sys
import xml.etree.ElementTree as ET


def _suites(root: ET.Element) -> list[ET.Element]:
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def summarize(directory: str, status: int = 0) -> tuple[list[str], dict[str, int], bool]:
    """(lines to print before the total, totals, ok); totals["runs"] counts the pytest runs."""
    totals = {"runs": 0, "passed": 0, "failed": 0, "skipped": 0}
    lines: list[str] = []
    ok = status == 0
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        names = []
    runs = [n[: -len(".started")] for n in names if n.endswith(".started")]
    totals["runs"] = len(runs)
    for run in runs:
        base = os.path.join(directory, run)
        with open(base + ".started") as f:
            xml_path = f.readline().strip() or base + ".xml"
        try:
            with open(base + ".exit") as f:
                exit_status: int | None = int(f.read().strip())
        except (OSError, ValueError):
            exit_status = None
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        try:
            for suite in _suites(ET.parse(xml_path).getroot()):
                for key in counts:
                    counts[key] += int(suite.get(key, 0))
            have_xml = True
        except (OSError, ET.ParseError):
            have_xml = False
        failed = counts["failures"] + counts["errors"]
        passed = counts["tests"] - failed - counts["skipped"]
        totals["passed"] += passed
        totals["failed"] += failed
        totals["skipped"] += counts["skipped"]
        problems = []
        if exit_status is None:
            problems.append("did not finish")
        elif exit_status != 0:
            problems.append(f"pytest exited {exit_status}" + (" (no tests collected)" if exit_status == 5 else ""))
        if not have_xml:
            problems.append("no junit XML")
        if problems or failed:
            ok = False
        label = run.split("-", 1)[1] if "-" in run else run
        lines.append(
            f"  {label}: {passed} passed, {failed} failed, {counts['skipped']} skipped"
            + (f"  <- {'; '.join(problems)}" if problems else "")
        )
    if not runs:
        lines.append("  no pytest run left results")
    if status != 0:
        lines.append(f"  the CI script failed (exit status {status}): see the output above")
    if totals["passed"] == 0:
        ok = False
    return lines, totals, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--status", type=int, default=0)
    args = parser.parse_args(argv)
    lines, totals, ok = summarize(args.directory, args.status)
    print(f"== summary of {totals['runs']} pytest runs")
    for line in lines:
        print(line)
    print(f"total: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
