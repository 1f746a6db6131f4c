"""Guard: vendor packages use pool_core's public API only, and its one typed contract.

The public modules are ``pool_core`` itself, ``pool_core.hooks`` (the vendor
contract: PoolHooks, TransactionState, the server-dialect hooks),
``pool_core.mixin`` and ``pool_core.bridge``. Everything else (``pool_core.pool``,
``pool_core._*``, ``registry``, ...) may change without notice.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib

import pytest

PACKAGES = pathlib.Path(__file__).resolve().parents[1] / "packages"
VENDORS = ["pool-postgresql", "pool-mysql", "pool-oracle", "pool-jdbc", "pool-odbc"]
PUBLIC = {"pool_core", "pool_core.hooks", "pool_core.mixin", "pool_core.bridge"}


def _public(module: str) -> bool:
    if module in PUBLIC:
        return True
    # pool_core.bridge.<dialect>: the bridge package's modules are public, bar _private ones.
    parts = module.split(".")
    return parts[:2] == ["pool_core", "bridge"] and not any(p.startswith("_") for p in parts[2:])


def _pool_core_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pool_core" or node.module.startswith("pool_core."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "pool_core"]
    return found


@pytest.mark.parametrize("package", VENDORS)
def test_vendor_packages_import_only_the_public_api(package):
    files = sorted((PACKAGES / package / "src").rglob("*.py"))
    assert files, f"no sources under {package}"
    private = [
        f"{path.relative_to(PACKAGES)}:{line}: {module}"
        for path in files
        for line, module in _pool_core_imports(path)
        if not _public(module)
    ]
    assert private == []


def test_the_guard_sees_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from pool_core.pool import IDLE\nimport pool_core._lease\nfrom pool_core.bridge.postgresql import X\n")
    assert [m for _, m in _pool_core_imports(bad) if not _public(m)] == ["pool_core.pool", "pool_core._lease"]


ENGINES = [
    "pool_postgresql",
    "pool_mysql",
    "pool_oracle",
    "pool_jdbc.postgresql",
    "pool_jdbc.mysql",
    "pool_jdbc.oracle",
    "pool_odbc.postgresql",
    "pool_odbc.mysql",
]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_implements_the_one_contract(engine):
    """The class the pool is handed is a PoolHooks, and every hook it overrides keeps the contract's signature."""
    from pool_core.hooks import PoolHooks

    try:
        wrapper = importlib.import_module(f"{engine}.base").DatabaseWrapper
    except ImportError as e:  # a driver this environment lacks (cx_Oracle, pyodbc, JPype)
        pytest.skip(f"{engine}: {e}")
    assert issubclass(wrapper, PoolHooks)
    hooks = [name for name, value in vars(PoolHooks).items() if name.startswith("pool_") and callable(
        getattr(PoolHooks, name))]
    assert "pool_transaction_state" in hooks and "pool_release_cursor" in hooks
    wrong = []
    for name in hooks:
        ours, theirs = inspect.signature(getattr(PoolHooks, name)), inspect.signature(getattr(wrapper, name))
        # A hook run on the instance may be a staticmethod there (no self): the call is the same.
        if [p for p in ours.parameters if p != "self"] != [p for p in theirs.parameters if p != "self"]:
            wrong.append(f"{name}{theirs} (contract: {name}{ours})")
        if name == "pool_transaction_state" and "TransactionState" not in str(theirs.return_annotation):
            wrong.append(f"{name} returns {theirs.return_annotation}, not TransactionState")
    assert wrong == []


@pytest.mark.parametrize("engine", ENGINES)
def test_make_cursor_is_djangos_own_under_the_mixin(engine):
    """PoolingMixin.make_cursor() builds Django's CursorWrapper itself (one call per cursor, the
    cursor noted inline): no class under it in the ENGINE's MRO may have its own make_cursor."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    from pool_core.mixin import PoolingMixin

    try:
        wrapper = importlib.import_module(f"{engine}.base").DatabaseWrapper
    except ImportError as e:  # a driver this environment lacks (cx_Oracle, pyodbc, JPype)
        pytest.skip(f"{engine}: {e}")
    mro = wrapper.__mro__
    below = mro[mro.index(PoolingMixin) + 1:]
    assert [c for c in below if "make_cursor" in vars(c)] == [BaseDatabaseWrapper]
    above = mro[:mro.index(PoolingMixin)]
    assert [c for c in above if "make_cursor" in vars(c)] == []


def test_record_info_is_read_through_its_typed_accessor():
    """pool_core keeps its per-connection bookkeeping in record.info: through
    pool_core._sqla.info_of() only, whose RecordInfo lets the type checker see every key."""
    import re

    src = PACKAGES / "pool-core" / "src" / "pool_core"
    direct = re.compile(r"\.info(\[|\.(get|pop|setdefault)\()")
    found = [
        f"{path.relative_to(src)}:{n}: {line.strip()}"
        for path in sorted(src.rglob("*.py"))
        if path.name != "_sqla.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if direct.search(line)
    ]
    assert found == []
