"""pool_jdbc specifics: JVM on demand, fork, configuration errors, Python types."""

from __future__ import annotations

import datetime
import decimal
import multiprocessing
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.utils import OperationalError

import pool_core
from tests.conftest import BRIDGES, ENGINES

pytestmark = pytest.mark.skipif(not BRIDGES, reason="JDBC engines run in the POOL_TEST_BRIDGES=1 pass")

ctx = multiprocessing.get_context("fork")


def _jdbc(label: str):
    return next(e for e in ENGINES if e.label == label)


@pytest.fixture(params=["jdbc_postgresql", "jdbc_mysql"])
def jdbc(request):
    from tests.conftest import _fresh

    yield from _fresh(_jdbc(request.param))


def _child(alias, queue) -> None:
    try:
        connections[alias].ensure_connection()
        queue.put(("connected", None, None))
    except BaseException as e:  # noqa: BLE001
        queue.put((type(e).__module__ + "." + type(e).__name__, isinstance(e, OperationalError), str(e)))


def test_forked_child_gets_a_clear_error(jdbc):
    """A child forked after the JVM started raises a Django error at checkout instead of hanging."""
    alias = jdbc.make_alias({"POOL_SIZE": 1})
    parent_id = jdbc.backend_id(alias)  # the JVM runs; this thread holds a connection
    queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(alias, queue))
    p.start()
    kind, is_django_error, message = queue.get(timeout=60)
    p.join(60)
    assert p.exitcode == 0
    assert kind == "pool_core.PoolForkError" and is_django_error, (kind, message)
    assert repr(alias) in message and "fork" in message
    # The parent's connection is untouched by the child.
    assert jdbc.backend_id(alias) == parent_id
    assert parent_id in jdbc.server_sessions()


def test_missing_driver_class_names_alias_and_option(jdbc):
    alias = jdbc.make_alias(OPTIONS={**jdbc.extra_options(), "JDBC_DRIVER": "com.example.NoSuchDriver"})
    with pytest.raises(ImproperlyConfigured) as info:
        connections[alias].ensure_connection()
    text = str(info.value)
    assert repr(alias) in text and "OPTIONS['CLASSPATH']" in text and "com.example.NoSuchDriver" in text


def test_missing_jar_names_alias_and_option(jdbc):
    alias = jdbc.make_alias(OPTIONS={**jdbc.extra_options(), "CLASSPATH": ["/nonexistent/driver.jar"]})
    with pytest.raises(ImproperlyConfigured) as info:
        connections[alias].ensure_connection()
    assert repr(alias) in str(info.value) and "OPTIONS['CLASSPATH']" in str(info.value)
    assert "/nonexistent/driver.jar" in str(info.value)


def test_classpath_must_be_a_list_of_paths(jdbc):
    alias = jdbc.make_alias(OPTIONS={**jdbc.extra_options(), "CLASSPATH": 42})
    with pytest.raises(ImproperlyConfigured, match=r"OPTIONS\['CLASSPATH'\]"):
        connections[alias].ensure_connection()


def test_jdbc_url_option_overrides_the_default(jdbc):
    alias = jdbc.make_alias({"POOL_SIZE": 1}, OPTIONS={**jdbc.extra_options(),
                                                      "JDBC_URL": "jdbc:nosuch://127.0.0.1/x"})
    with pytest.raises(ImproperlyConfigured, match="does not accept the URL"):
        connections[alias].ensure_connection()


def test_a_password_in_a_refused_jdbc_url_is_masked(jdbc):
    """The URL a driver refuses is named in the error, without the password it may carry."""
    alias = jdbc.make_alias({"POOL_SIZE": 1}, PASSWORD="", OPTIONS={
        **jdbc.extra_options(), "JDBC_URL": "jdbc:nosuch://127.0.0.1/x?user=app&password=hunter2-pw"})
    with pytest.raises(ImproperlyConfigured, match="does not accept the URL") as info:
        connections[alias].ensure_connection()
    assert "hunter2-pw" not in str(info.value)
    assert "password=********" in str(info.value)


def test_python_types_come_back(jdbc):
    alias = jdbc.make_alias()
    pg = jdbc.vendor == "postgresql"
    sql = ("SELECT CAST(%s AS DATE), CAST(%s AS DECIMAL(10,3)), %s, CAST(%s AS "
           + ("TIMESTAMP" if pg else "DATETIME") + "), "
           "CAST(%s AS " + ("TEXT" if pg else "CHAR") + ")")
    day, amount = datetime.date(2024, 2, 29), decimal.Decimal("12.345")
    moment = datetime.datetime(2024, 2, 29, 13, 14, 15)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [day, amount, True, moment, "h\u00e9llo %"])
        row = cursor.fetchone()
    assert row[0] == day and type(row[0]) is datetime.date
    assert row[1] == amount and type(row[1]) is decimal.Decimal
    assert row[2] in (True, 1) and type(row[2]) in (bool, int)
    assert row[3] == moment and type(row[3]) is datetime.datetime
    assert row[4] == "h\u00e9llo %" and type(row[4]) is str


@pytest.fixture
def jdbc_postgresql():
    from tests.conftest import _fresh

    yield from _fresh(_jdbc("jdbc_postgresql"))  # as a fixture, the clean-up runs when the test fails too


def test_postgres_specific_types(jdbc_postgresql):
    alias = jdbc_postgresql.make_alias()
    u = uuid.uuid4()
    aware = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT %s::uuid, %s::timestamptz, 'abc'::bytea, '{\"a\": 1}'::jsonb, "
                       "repeat('x', 100000)::text", [u, aware])
        row = cursor.fetchone()
    assert row[0] == u and isinstance(row[0], uuid.UUID)
    assert row[1] == aware and row[1].tzinfo is not None
    assert bytes(row[2]) == b"abc"
    assert row[3] == '{"a": 1}'
    assert len(row[4]) == 100000


def test_return_in_autocommit_and_in_transaction_never_errors(jdbc):
    alias = jdbc.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    conn = connections[alias]
    conn.ensure_connection()
    assert conn.connection.autocommit is True
    conn.close()  # autocommit: nothing to roll back, JDBC's rollback would raise
    conn.set_autocommit(False)
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
    conn.close()  # open transaction: rolled back on return
    s = pool_core.stats(alias)
    assert s["connections_invalidated"] == 0 and s["rollbacks_on_return"] == 1
    conn.ensure_connection()
    assert conn.connection.autocommit is True


_LAZY_SCRIPT = r"""
import json, os, sys, threading
import django
from django.conf import settings
db = json.loads(os.environ["LAZY_DB"])
settings.configure(DATABASES={f"a{i}": db for i in range(6)} | {"default": db}, USE_TZ=True)
django.setup()
import jpype
from django.db import connections
import pool_jdbc.postgresql.base  # noqa: F401
started_at_import = jpype.isJVMStarted()
barrier, results = threading.Barrier(6), []
def first_use(i):
    barrier.wait()
    with connections[f"a{i}"].cursor() as c:
        c.execute("SELECT %s + 1", [i])
        results.append(int(c.fetchone()[0]))
    connections[f"a{i}"].close()
threads = [threading.Thread(target=first_use, args=(i,)) for i in range(6)]
[t.start() for t in threads]; [t.join(120) for t in threads]
print(json.dumps({"at_import": started_at_import, "after": jpype.isJVMStarted(), "results": sorted(results)}))
"""


def test_jvm_starts_on_first_use_once_under_concurrent_first_checkouts():
    import json
    import os
    import subprocess
    import sys

    e = _jdbc("jdbc_postgresql")
    db = e.settings()
    env = {**os.environ, "LAZY_DB": json.dumps(db)}
    out = subprocess.run([sys.executable, "-c", _LAZY_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"at_import": False, "after": True, "results": [1, 2, 3, 4, 5, 6]}
