"""What survives a return to the pool, and RESET_SESSION (issue 4, scenario 8).

By default only the transaction is reset on return (rolled back if open);
session state a request changes (SET ..., user variables, temporary tables)
stays with the physical connection. RESET_SESSION=True resets all of it:
PostgreSQL ``DISCARD ALL``, PyMySQL ``COM_RESET_CONNECTION`` (then the
connect-time settings are restored), mysqlclient by replacing the connection.
"""

from __future__ import annotations

from django.db import connections

import pool_core

# Per vendor: statements that change session state, and a query whose answer
# is the state (as strings), before and after.
STATE = {
    "postgresql": (
        ["SET statement_timeout = '1234ms'", "SET search_path = pg_catalog", "SET myapp.tenant = 'a'",
         "CREATE TEMP TABLE pool_tmp (x int)"],
        "SELECT current_setting('statement_timeout'), current_setting('search_path'),"
        " coalesce(current_setting('myapp.tenant', true), ''),"
        " (SELECT count(*) FROM pg_class WHERE relname = 'pool_tmp' AND relpersistence = 't')::text,"
        " current_setting('TimeZone')",
    ),
    "mysql": (
        ["SET @pool_marker = 42", "SET SESSION wait_timeout = 1234", "SET SESSION sql_mode = 'ANSI_QUOTES'",
         "SET SESSION time_zone = '+05:00'"],
        "SELECT CAST(COALESCE(@pool_marker, '') AS CHAR), CAST(@@SESSION.wait_timeout AS CHAR), @@SESSION.sql_mode,"
        " @@SESSION.time_zone, @@SESSION.character_set_client, @@SESSION.collation_connection",
    ),
}


def _state(alias, query):
    with connections[alias].cursor() as cursor:
        cursor.execute(query)
        return tuple(str(v) for v in cursor.fetchone())


def _change(alias, statements):
    with connections[alias].cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def test_session_state_survives_return_by_default(engine):
    statements, query = STATE[engine.vendor]
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    before = _state(alias, query)
    _change(alias, statements)
    changed = _state(alias, query)
    backend = engine.backend_id(alias)
    connections[alias].close()
    assert _state(alias, query) == changed != before
    assert engine.backend_id(alias) == backend
    connections[alias].close()
    assert pool_core.stats(alias)["session_resets"] == 0


def test_reset_session_restores_a_fresh_session(engine):
    statements, query = STATE[engine.vendor]
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "RESET_SESSION": True})
    before = _state(alias, query)
    backend = engine.backend_id(alias)
    _change(alias, statements)
    assert _state(alias, query) != before
    connections[alias].close()
    assert _state(alias, query) == before
    s = pool_core.stats(alias)
    assert s["session_resets"] == 1 and s["connections_invalidated"] == 0
    assert s["connections_reclaimed"] == 0  # a re-queued parked connection is no leak
    replaced = engine.backend_id(alias) != backend
    # mysqlclient (and MySQL over ODBC) has no reset call: the connection is
    # replaced; the others reset in place.
    assert replaced == (engine.id == "mysql-mysqlclient" or getattr(engine, "reset_replaces", False))
    assert s["connections_created"] == (2 if replaced else 1)
    # Django's per-connection set-up ran again (PostgreSQL time zone, MySQL
    # isolation level...) and the ORM works normally after the reset.
    from tests.testapp.models import Note

    Note.objects.using(alias).create(text="after reset")
    assert Note.objects.using(alias).filter(text="after reset").count() == 1
    Note.objects.using(alias).filter(text="after reset").delete()
    connections[alias].close()

