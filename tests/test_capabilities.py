"""Guard: contract tests are matched to engines by capability, never by test name.

Every capability an engine lacks must be one a test requires, and every
``requires`` marker must name a known capability: renaming a test or a
capability then fails here instead of silently running or skipping a case.
"""

from __future__ import annotations

import ast
import inspect
import pathlib

from tests import _db

TESTS = pathlib.Path(__file__).parent


def _engine_classes() -> list[type[_db.Engine]]:
    return [c for _, c in inspect.getmembers(_db, inspect.isclass) if issubclass(c, _db.Engine)]


def _required() -> dict[str, list[str]]:
    """Capability -> the places that require it (``mark.requires(...)`` in any test file)."""
    found: dict[str, list[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "requires" and isinstance(node.func.value, ast.Attribute)
                    and node.func.value.attr == "mark"):
                assert node.args, f"{path}:{node.lineno}: requires() names no capability"
                for arg in node.args:
                    assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), \
                        f"{path}:{node.lineno}: requires() takes capability names as string literals"
                    found.setdefault(arg.value, []).append(f"{path.relative_to(TESTS)}:{node.lineno}")
    return found


def test_every_requires_marker_names_a_known_capability():
    required = _required()
    assert required  # the scan finds the markers
    unknown = {c: where for c, where in required.items() if c not in _db.CAPABILITIES}
    assert unknown == {}


def test_every_lacked_capability_is_known_and_required_by_a_test():
    required = _required()
    for cls in _engine_classes():
        assert not hasattr(cls, "inapplicable"), \
            f"{cls.__name__}.inapplicable (test name -> reason) is gone: use lacks (capability -> reason)"
        for capability, reason in cls.lacks.items():
            assert capability in _db.CAPABILITIES, f"{cls.__name__} lacks unknown capability {capability!r}"
            assert capability in required, f"{cls.__name__} lacks {capability!r}, which no test requires"
            assert isinstance(reason, str) and reason.strip(), f"{cls.__name__}: no reason for {capability!r}"


def test_every_capability_is_required_by_a_test():
    required = _required()
    assert sorted(set(_db.CAPABILITIES) - set(required)) == []
