"""PostgreSQL-only behaviour: PostGIS, django-tenants, psycopg specifics."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test.utils import override_settings

import pool_core


@pytest.fixture(scope="module")
def gis_db():
    from tests.conftest import ENGINES

    e = next(e for e in ENGINES if e.vendor == "postgresql")
    name = f"{e.dbname}_gis"
    e.q(f'CREATE DATABASE "{name}"')
    try:
        c = e.connect_admin(name)
        try:
            c.cursor().execute("CREATE EXTENSION postgis")
        finally:
            c.close()
        yield name
    finally:
        pool_core.dispose()
        connections.close_all()
        e.q(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_native_pool_option_is_rejected(pg):
    alias = pg.make_alias()
    connections[alias].settings_dict["OPTIONS"] = {"pool": True}
    with pytest.raises(ImproperlyConfigured, match="POOL_OPTIONS instead"):
        connections[alias].ensure_connection()


def test_isolation_level_option_is_applied_to_every_checkout(pg):
    from django.db.backends.postgresql.psycopg_any import IsolationLevel

    alias = pg.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    connections[alias].settings_dict["OPTIONS"] = {"isolation_level": IsolationLevel.SERIALIZABLE}
    for _ in range(2):
        conn = connections[alias]
        conn.set_autocommit(False)
        with conn.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone()[0] == "serializable"
        assert conn.isolation_level == IsolationLevel.SERIALIZABLE
        conn.close()
    assert pool_core.stats(alias)["connections_created"] == 1


def test_postgis_backend_pooled(pg, gis_db):
    alias = pg.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0}, ENGINE="pool_postgresql.postgis", NAME=gis_db)
    from django.contrib.gis.geos import Point

    conn = connections[alias]
    assert conn.ops.spatial_version >= (3, 0, 0)
    ids = []
    for _ in range(2):
        with conn.cursor() as cursor:
            cursor.execute("SELECT ST_AsText(ST_MakePoint(%s, %s)), pg_backend_pid()", [1.5, 2.5])
            text, pid = cursor.fetchone()
            assert text == "POINT(1.5 2.5)"
            ids.append(pid)
            cursor.execute("SELECT ST_X(%s::geometry)", [conn.ops.Adapter(Point(3, 4, srid=4326))])
            assert cursor.fetchone()[0] == 3
        conn.close()
    assert ids[0] == ids[1]


@pytest.fixture
def tenants(pg):
    schemas = ("tenant_a", "tenant_b")
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    kw = dict(host=pg.server.host, port=pg.server.port, user=pg.server.user, dbname=pg.dbname)
    if is_psycopg3:
        import psycopg

        c = psycopg.connect(**kw, autocommit=True)
    else:
        import psycopg2

        c = psycopg2.connect(**kw)
        c.autocommit = True
    try:
        cur = c.cursor()
        for s in schemas:
            cur.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
            cur.execute(f"CREATE SCHEMA {s}")
            cur.execute(f"CREATE TABLE {s}.items (owner text)")
            cur.execute(f"INSERT INTO {s}.items SELECT %s FROM generate_series(1, 3)", [s])
        yield schemas
        for s in schemas:
            cur.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
    finally:
        c.close()


@pytest.mark.parametrize("limit_set_calls", [False, True])
def test_tenants_never_see_each_other(pg, tenants, limit_set_calls):
    """Two tenants, interleaved across threads, sharing one pooled connection."""
    alias = pg.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 60},
                          ENGINE="pool_postgresql.django_tenants")
    wrong: list[tuple[str, set]] = []
    errors: list[BaseException] = []
    backends: set[int] = set()

    def request(schema: str) -> None:
        conn = connections[alias]
        conn.set_schema(schema)
        with conn.cursor() as cursor:
            cursor.execute("SELECT owner, pg_backend_pid() FROM items")
            rows = cursor.fetchall()
        backends.update(r[1] for r in rows)
        owners = {r[0] for r in rows}
        if owners != {schema}:
            wrong.append((schema, owners))
        conn.close()

    def worker(first: str, second: str) -> None:
        try:
            for _ in range(25):
                request(first)
                request(second)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connections[alias].close()

    with override_settings(TENANT_LIMIT_SET_CALLS=limit_set_calls):
        threads = [threading.Thread(target=worker, args=(("tenant_a", "tenant_b") if i % 2 else ("tenant_b", "tenant_a")))
                   for i in range(4)]
        try:
            for t in threads:
                t.start()
        finally:
            for t in threads:
                if t.ident is not None:
                    t.join()
    assert errors == []
    assert wrong == []
    assert len(backends) == 1  # they really shared one server connection
    assert pool_core.stats(alias)["checkouts"] == 4 * 50
