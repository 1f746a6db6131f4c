"""The migration table from django-db-connection-pool (docs/migration.md): every ENGINE it names loads.

Needs no build and no server: parse the table, import each ENGINE's ``base`` module and
check its DatabaseWrapper is pooled. An ENGINE whose package is not in packages/ yet is an
expected failure only while that directory is missing.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from pool_core import PoolingMixin

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "migration.md"
SECTION = "# Migrating from django-db-connection-pool"

# Every ENGINE path of django-db-connection-pool 1.2.3-1.2.5 (dj_db_conn_pool/backends/**/base.py).
PREDECESSOR_ENGINES = {
    "dj_db_conn_pool.backends.mysql",
    "dj_db_conn_pool.backends.postgresql",
    "dj_db_conn_pool.backends.postgis",
    "dj_db_conn_pool.backends.postgresql.django_tenants",
    "dj_db_conn_pool.backends.oracle",
    "dj_db_conn_pool.backends.jdbc.oracle",
    "dj_db_conn_pool.backends.jdbc.oceanbase.mysql",
    "dj_db_conn_pool.backends.jdbc.oceanbase.oracle",
    "dj_db_conn_pool.backends.odbc.oceanbase.oracle",
}


def migration_table() -> dict[str, str]:
    text = PAGE.read_text()
    assert SECTION in text, f"docs/migration.md has no '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n# ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`(dj_db_conn_pool\.[\w.]+)`\s*\|\s*`(pool_[\w.]+)`\s*\|", line)
        if match:
            assert match[1] not in rows, f"{match[1]} appears twice in the migration table"
            rows[match[1]] = match[2]
    return rows


TABLE = migration_table()


def test_table_maps_every_predecessor_engine():
    assert set(TABLE) == PREDECESSOR_ENGINES


def test_mapping_keeps_the_vendor():
    # .backends.X.Y -> pool_X.Y, except postgis, which lives in pool_postgresql.
    for old, new in TABLE.items():
        rest = old.removeprefix("dj_db_conn_pool.backends.")
        expected = "pool_postgresql.postgis" if rest == "postgis" else "pool_" + rest
        assert new == expected, f"{old} maps to {new}, expected {expected}"


def _package_dir(engine: str) -> Path:
    return ROOT / "packages" / engine.split(".")[0].replace("_", "-")


@pytest.mark.parametrize("engine", sorted(set(TABLE.values())))
def test_engine_loads_and_is_pooled(engine):
    if not _package_dir(engine).is_dir():
        pytest.xfail(f"package not merged yet: {_package_dir(engine).relative_to(ROOT)} is missing")
    base = importlib.import_module(engine + ".base")
    assert issubclass(base.DatabaseWrapper, PoolingMixin), f"{engine}.base.DatabaseWrapper is not pooled"


def test_setup_is_the_predecessors():
    import pool_core

    pool_core.setup(pool_size=7, max_overflow=3)  # dj_db_conn_pool.setup's keywords
    try:
        assert (pool_core.get_defaults().pool_size, pool_core.get_defaults().max_overflow) == (7, 3)
    finally:
        pool_core.reset_defaults()


def _install_column() -> list[tuple[str, str]]:
    """(distribution, extra) for every `pip install "dist[a,b]"` in the table's install column."""
    text = PAGE.read_text().split(SECTION, 1)[1].split("\n# ", 1)[0]
    found = []
    for line in text.splitlines():
        if line.startswith("| `dj_db_conn_pool."):
            for dist, extras in re.findall(r"pip install \"?(pool-[\w-]+)(?:\[([\w,-]+)\])?", line):
                found += [(dist, e) for e in extras.split(",") if e] or [(dist, "")]
    return sorted(set(found))


@pytest.mark.parametrize(("dist", "extra"), _install_column())
def test_install_column_names_real_extras(dist, extra):
    import tomllib

    pyproject = ROOT / "packages" / dist / "pyproject.toml"
    if not pyproject.parent.is_dir():
        pytest.xfail(f"package not merged yet: packages/{dist} is missing")
    project = tomllib.loads(pyproject.read_text())["project"]
    assert project["name"] == dist
    if extra:
        assert extra in project.get("optional-dependencies", {}), f"{dist} has no [{extra}] extra"
