"""scripts/ci_summary.py: the one line that says how much CI ran, and its verdict."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "ci_summary", Path(__file__).resolve().parents[2] / "scripts" / "ci_summary.py")
ci_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ci_summary)


def _run(directory: Path, name: str, exit_status: int | None, **counts: int) -> None:
    xml = directory / f"{name}.xml"
    attrs = " ".join(f'{k}="{v}"' for k, v in {"tests": 0, "failures": 0, "errors": 0, "skipped": 0,
                                                 **counts}.items())
    xml.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest" {attrs}/></testsuites>')
    (directory / f"{name}.started").write_text(f"{xml}\n")
    if exit_status is not None:
        (directory / f"{name}.exit").write_text(f"{exit_status}\n")


def _last_line(capsys) -> str:
    return capsys.readouterr().out.splitlines()[-1]


def test_sums_every_run(tmp_path, capsys):
    _run(tmp_path, "1-a", 0, tests=10, skipped=2)
    _run(tmp_path, "2-b", 0, tests=5)
    assert ci_summary.main([str(tmp_path)]) == 0
    assert _last_line(capsys) == "total: 13 passed, 0 failed, 2 skipped"


@pytest.mark.parametrize(("runs", "status"), [
    ([("1-a", 1, {"tests": 4, "failures": 1}), ("2-b", 0, {"tests": 3})], 0),  # a failure
    ([("1-a", 1, {"tests": 4, "errors": 1})], 0),                            # an error
    ([("1-a", 0, {"tests": 4}), ("2-b", 5, {})], 0),                         # no tests collected
    ([("1-a", None, {"tests": 4})], 0),                                      # never finished
    ([("1-a", 0, {"tests": 4})], 2),                                         # a failed CI step
    ([], 0),                                                                 # nothing ran
])
def test_fails_the_run(tmp_path, capsys, runs, status):
    for name, exit_status, counts in runs:
        _run(tmp_path, name, exit_status, **counts)
    assert ci_summary.main([str(tmp_path), "--status", str(status)]) == 1
    last = _last_line(capsys)
    assert last.startswith("total: ") and " passed, " in last and " failed, " in last
