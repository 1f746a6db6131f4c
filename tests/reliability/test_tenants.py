"""Scenario 7, django-tenants: two tenants, many threads, few shared connections.

With ENGINE ``pool_postgresql.django_tenants``, interleaved requests for two
tenants (a write, then a read) across 16 threads sharing a pool of 2 + 2
never read or write the other tenant's rows. PostgreSQL only.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction
from django.test.utils import override_settings

import pool_core
from tests.reliability._figures import record
from tests.reliability.conftest import Monitor, drop_engine, make_engine, run_threads, shared_server

pytestmark = pytest.mark.heavy

THREADS, SIZE, OVERFLOW, REQUESTS = 16, 2, 2, 60
SCHEMAS = ("tenant_a", "tenant_b")


@pytest.fixture
def eng(fresh_pools):
    e = make_engine(shared_server("postgresql"), "postgresql", "tenants")
    alias = e.make_alias()
    with connections[alias].cursor() as cursor:
        for s in SCHEMAS:
            cursor.execute(f"CREATE SCHEMA {s}")
            cursor.execute(f"CREATE TABLE {s}.items (owner text, tag text)")
    connections[alias].close()
    pool_core.dispose()
    yield e
    drop_engine(e)


@pytest.mark.parametrize("limit_set_calls", [False, True])
def test_tenants_never_see_each_other(eng, limit_set_calls):
    alias = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": 120},
                           ENGINE="pool_postgresql.django_tenants")
    bound = SIZE + OVERFLOW
    lock = threading.Lock()
    wrong: list[tuple] = []
    errors: list[BaseException] = []
    written: dict[str, list[str]] = {s: [] for s in SCHEMAS}
    backends: dict[int, set[str]] = {}
    ops = [0]

    def request(schema: str, tag: str) -> None:
        conn = connections[alias]
        conn.set_schema(schema)
        with transaction.atomic(using=alias):
            with conn.cursor() as cursor:
                cursor.execute("INSERT INTO items VALUES (%s, %s)", [schema, tag])
        with conn.cursor() as cursor:
            cursor.execute("SELECT DISTINCT owner, current_schema(), pg_backend_pid() FROM items")
            rows = cursor.fetchall()
        conn.close()  # end of request: the connection goes back to the pool
        with lock:
            ops[0] += 1
            written[schema].append(tag)
            for owner, current, pid in rows:
                backends.setdefault(pid, set()).add(schema)
                if owner != schema or current != schema:
                    wrong.append((schema, owner, current))

    def worker(n: int) -> None:
        order = SCHEMAS if n % 2 else SCHEMAS[::-1]
        try:
            for i in range(REQUESTS):
                request(order[i % 2], f"{n}-{i}")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connections[alias].close()

    with override_settings(TENANT_LIMIT_SET_CALLS=limit_set_calls), Monitor(eng) as mon:
        run_threads(worker, THREADS, 300)
    lost = 0
    check = eng.make_alias()
    with connections[check].cursor() as cursor:
        for s in SCHEMAS:
            cursor.execute(f"SELECT tag, owner FROM {s}.items")
            rows = cursor.fetchall()
            lost += len(set(written[s]) - {r[0] for r in rows})
            assert {r[1] for r in rows} <= {s}, s
            cursor.execute(f"TRUNCATE {s}.items")
    connections[check].close()
    shared = sum(1 for tenants in backends.values() if len(tenants) == 2)
    assert errors == []
    assert wrong == []
    assert lost == 0
    assert shared >= 1  # the tenants really took turns on the same connections
    assert mon.peak <= bound
    record("7. django-tenants isolation", f"{eng.id} LIMIT_SET_CALLS={limit_set_calls}", operations=ops[0],
           faults=None, errors=len(errors), rows_lost=lost, peak_connections=mon.peak, bound=bound, peak_raw=mon.peak_raw,
           note=f"{THREADS} threads alternating 2 tenants (write + read) on pool {SIZE}+{OVERFLOW}; "
                f"{shared} of {len(backends)} server connections served both tenants; 0 foreign rows seen")
