"""Test settings: one alias per installed pooled ENGINE, against real servers.

Drivers are chosen per process (Django binds them at import time):
POOL_TEST_PG_DRIVER = psycopg | psycopg2, POOL_TEST_MYSQL_DRIVER = mysqlclient | pymysql.
A requested driver that is missing is an error, never a skip.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

PG_DRIVER = os.environ.get("POOL_TEST_PG_DRIVER", "psycopg")
# JDBC/ODBC engines run in one driver-pair pass only (POOL_TEST_BRIDGES=1);
# when asked for, a missing JVM, jar or ODBC driver fails the run.
BRIDGES = os.environ.get("POOL_TEST_BRIDGES") == "1"
MYSQL_DRIVER = os.environ.get("POOL_TEST_MYSQL_DRIVER", "pymysql")

if PG_DRIVER == "psycopg2":
    sys.modules["psycopg"] = None  # type: ignore[assignment]  # Django falls back to psycopg2
if MYSQL_DRIVER == "pymysql":
    import pymysql

    pymysql.install_as_MySQLdb()
elif importlib.util.find_spec("MySQLdb") is None:
    raise RuntimeError("POOL_TEST_MYSQL_DRIVER=mysqlclient but mysqlclient is not installed")

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from tests import _servers  # noqa: E402
from tests._db import CAPABILITIES, CHECKOUT, REQUEST_MODE_ONLY, Engine, build_engines  # noqa: E402

RUN_ID = f"pool_test_{os.getpid()}"


def _configure() -> list[Engine]:
    pg = _servers.postgres()
    my = _servers.mariadb()
    engines = build_engines(pg, my, RUN_ID, PG_DRIVER, MYSQL_DRIVER, bridges=BRIDGES)
    if BRIDGES:
        from tests._bridges import require_bridges

        require_bridges()
    databases = {e.alias: e.settings() for e in engines}
    databases["default"] = dict(databases[engines[0].alias])
    settings.configure(
        DEBUG=False,
        DATABASES=databases,
        INSTALLED_APPS=["django.contrib.contenttypes", "pool_core", "tests.testapp"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        LOGGING_CONFIG=None,
    )
    django.setup()
    return engines


ENGINES = _configure()


def pytest_report_header(config):
    return [f"engines: {', '.join(e.id for e in ENGINES)}",
            f"servers: {', '.join(repr(e.server) for e in ENGINES)}"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker in item.iter_markers("requires"):
            unknown = [c for c in marker.args if c not in CAPABILITIES]
            if unknown or not marker.args:
                raise pytest.UsageError(f"{item.nodeid}: requires{marker.args} names no capability or an "
                                        f"unknown one {unknown}; known: {sorted(CAPABILITIES)} (tests/_db.py)")
            if "engine" not in item.fixturenames:
                raise pytest.UsageError(f"{item.nodeid}: the requires marker only works with the engine fixture")
        path = str(item.fspath)
        if f"{os.sep}contract{os.sep}" in path:
            item.add_marker(pytest.mark.contract)
        if f"{os.sep}vendors{os.sep}" in path:
            item.add_marker(pytest.mark.vendor)


@pytest.fixture(scope="session", autouse=True)
def _databases():
    for e in ENGINES:
        e.create_database()
    for e in ENGINES:
        e.create_tables()
    yield
    from django.db import connections

    import pool_core

    connections.close_all()
    pool_core.dispose()
    for e in ENGINES:
        e.drop_database()
        e.admin_close()
    for e in ENGINES:
        for stop in e.server.stop:
            stop()


def _fresh(e: Engine):
    from django.db import connections

    import pool_core

    connections.close_all()
    pool_core.dispose()
    pool_core.reset_defaults()
    yield e
    e.cleanup_aliases()
    connections.close_all()
    pool_core.dispose()
    pool_core.reset_defaults()


@pytest.fixture(params=ENGINES, ids=[e.id for e in ENGINES])
def engine(request):
    """Each installed pooled ENGINE in turn; fresh pools before and after."""
    e = request.param
    base = request.node.name.partition("[")[0]
    if CHECKOUT == "transaction" and base in REQUEST_MODE_ONLY and not e.label and e.vendor in ("postgresql", "mysql"):
        pytest.skip(f"request mode only: {REQUEST_MODE_ONLY[base]}")
    for marker in request.node.iter_markers("requires"):
        for capability in marker.args:
            if capability in e.lacks:
                pytest.skip(f"inapplicable to {e.engine}: {e.lacks[capability]}")
    yield from _fresh(e)


@pytest.fixture
def pg():
    yield from _fresh(next(e for e in ENGINES if e.vendor == "postgresql"))


@pytest.fixture
def mysql():
    yield from _fresh(next(e for e in ENGINES if e.vendor == "mysql"))
