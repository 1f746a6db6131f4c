"""Release metadata that needs no build: the static half of scripts/release/check.py.

Every package under packages/ has a release-check.toml entry, a single version source, a
CHANGELOG section for that version, and (vendors) a pool-core range '>=X.Y,<X+1' that the
in-tree pool-core satisfies.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

RELEASE = Path(__file__).resolve().parents[2] / "scripts" / "release"
sys.path.insert(0, str(RELEASE))
try:
    import check  # noqa: E402
    import lib  # noqa: E402
finally:
    sys.path.remove(str(RELEASE))

PACKAGES = lib.discover()
TABLE = lib.load_table()
CORE = next(p for p in PACKAGES if p.name == lib.CORE)


def test_every_package_has_a_release_check_entry():
    missing = [p.name for p in PACKAGES if p.name not in TABLE]
    assert not missing, f"add [packages.<name>] to {lib.TABLE.name} for: {missing}"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_metadata(package):
    check.check_metadata(package, TABLE[package.name], CORE)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_tag_convention(package):
    assert package.tag == f"{package.name}-v{package.version}"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("pool-core>=0.1,<1", None),
        ("pool-core>=1.3,<2", None),
        ("pool-core>=0.1", "range must be"),
        ("pool-core<1", "range must be"),
        ("pool-core>=0.1,<2", "ceiling must be '<1'"),
        ("pool-core>=1.2.3,<2", "floor must be X.Y"),
        ("pool-core>=1.2,<2.1", "ceiling must be '<2'"),
    ],
)
def test_core_range_rule(spec, error):
    fake = lib.Package("pool-x", RELEASE, {"project": {"name": "pool-x", "dependencies": [spec]}})
    if error is None:
        assert check.core_floor(fake) == tuple(int(x) for x in spec.split(">=")[1].split(",")[0].split("."))
    else:
        with pytest.raises(lib.ReleaseError, match=error):
            check.core_floor(fake)
