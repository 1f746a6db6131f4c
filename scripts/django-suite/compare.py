"""Summarise and compare the runs of run.sh (called by it; stdlib only).

usage: compare.py RESULTS_DIR LOGS_DIR EXPECTED_FILE CONFIG...

EXPECTED_FILE has one allowed difference a line: ``CONFIG|TEST_ID|REASON``
(TEST_ID may be an fnmatch pattern). Exit status: 0 if no pooled run has a
failure/error/unexpected success that its stock run lacks (other than the
expected ones); 1 if one has; 2 if a configuration produced no result.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from pathlib import Path

PAIRS = {"pool_pg": "pg", "pool_mysql": "mysql"}


def summary_lines(log: Path) -> str:
    if not log.exists():
        return "(no log)"
    lines = log.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^Ran \d+ tests? in ", line):
            status = next((s for s in lines[i + 1 :] if s.strip()), "")
            return f"{line.strip()} -- {status.strip()}"
    return "(no 'Ran N tests' line: the run did not finish, see the log)"


def bad_set(result: dict) -> dict[str, str]:
    bad = {}
    for kind in ("failures", "errors"):
        for test_id in result[kind]:
            bad[test_id] = kind[:-1] if kind == "failures" else "error"
    for test_id in result["unexpected_successes"]:
        bad[test_id] = "unexpected success"
    return bad


def first_line_of_error(result: dict, test_id: str) -> str:
    tb = result["failures"].get(test_id) or result["errors"].get(test_id) or ""
    lines = [s for s in tb.strip().splitlines() if s.strip()]
    return lines[-1].strip()[:200] if lines else ""


def main() -> int:
    results_dir, logs_dir, expected_file = map(Path, sys.argv[1:4])
    configs = sys.argv[4:]
    expected: list[tuple[str, str, str]] = []
    for line in expected_file.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            config, pattern, reason = (p.strip() for p in line.split("|", 2))
            expected.append((config, pattern, reason))

    status = 0
    results: dict[str, dict] = {}
    print("\n=== Summary per configuration")
    for config in configs:
        path = results_dir / f"{config}.json"
        log = logs_dir / f"{config}.log"
        print(f"{config:>11}: {summary_lines(log)}")
        if not path.exists():
            print(
                f"{'':>11}  NO RESULT FILE ({path}); the run crashed before or while running tests, see {log}"
            )
            status = 2
            continue
        r = json.loads(path.read_text())
        results[config] = r
        print(
            f"{'':>11}  tests={r['tests_run']} failures={len(r['failures'])} "
            f"errors={len(r['errors'])} skipped={r['skipped']} "
            f"expected_failures={r['expected_failures']} "
            f"unexpected_successes={len(r['unexpected_successes'])}"
        )

    for pooled, stock in PAIRS.items():
        if pooled not in configs or stock not in configs:
            continue
        print(f"\n=== {stock} (stock) vs {pooled}")
        if pooled not in results or stock not in results:
            print("  cannot compare: a run has no result")
            continue
        rp, rs = results[pooled], results[stock]
        bp, bs = bad_set(rp), bad_set(rs)
        if rp["tests_run"] != rs["tests_run"]:
            print(f"  note: {rs['tests_run']} tests ran stock, {rp['tests_run']} pooled")
        ids_p, ids_s = set(rp.get("test_ids", ())), set(rs.get("test_ids", ()))
        for t in sorted(ids_s - ids_p):
            print(f"  note: only in the stock run's suite: {t}")
        for t in sorted(ids_p - ids_s):
            print(f"  note: only in the pooled run's suite: {t}")
        pooled_only = sorted(set(bp) - set(bs))
        stock_only = sorted(set(bs) - set(bp))
        both = sorted(set(bp) & set(bs))
        if both:
            print(f"  failing in both ({len(both)}; not our concern here):")
            for t in both:
                print(f"    {bs[t]:>7}: {t}")
        used = set()
        unexpected = []
        for t in pooled_only:
            match = next(
                (
                    (c, p, why)
                    for c, p, why in expected
                    if c == pooled and (p == t or fnmatch.fnmatchcase(t, p))
                ),
                None,
            )
            if match:
                used.add(match[:2])
                print(f"  expected difference: {bp[t]}: {t}\n      reason: {match[2]}")
            else:
                unexpected.append(t)
        for t in unexpected:
            print(f"  POOLED-ONLY {bp[t]}: {t}\n      {first_line_of_error(rp, t)}")
        for t in stock_only:
            print(f"  stock-only {bs[t]} (passes pooled): {t}")
        for c, p, _why in expected:
            ran = not ids_p or any(p == t or fnmatch.fnmatchcase(t, p) for t in ids_p)
            if c == pooled and (c, p) not in used and ran:
                print(f"  note: expected difference did not occur: {p}")
        if unexpected:
            status = max(status, 1)
            print(f"  RESULT: {len(unexpected)} pooled-only failure(s)/error(s)")
        elif stock_only:
            print("  RESULT: OK (no pooled-only failures; the failing sets still differ, see above)")
        else:
            print(
                "  RESULT: OK (same failing tests"
                + (", apart from the expected differences)" if used else ")")
            )
    return status


if __name__ == "__main__":
    sys.exit(main())
