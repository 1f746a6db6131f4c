"""Live Oracle: the contract suite runs over pool_oracle when a server is given.

Set POOL_TEST_ORACLE_DSN (e.g. ``db:1521/FREEPDB1``), POOL_TEST_ORACLE_USER and
POOL_TEST_ORACLE_PASSWORD; the user needs CREATE TABLE, SELECT on V$SESSION
and ALTER SYSTEM (to kill sessions). tests/_db.py then adds an OracleEngine
to the ``engine`` fixture.
"""

from __future__ import annotations

import pytest
from django.db import connections

from tests.conftest import ENGINES

LIVE = [e for e in ENGINES if e.vendor == "oracle"]

pytestmark = pytest.mark.skipif(
    not LIVE, reason="no Oracle server: set POOL_TEST_ORACLE_DSN, POOL_TEST_ORACLE_USER, POOL_TEST_ORACLE_PASSWORD"
)


@pytest.fixture
def live():
    from tests.conftest import _fresh

    yield from _fresh(LIVE[0])  # as a fixture, the clean-up runs when the test fails too


def test_live_server_session_settings(live):
    alias = live.make_alias()
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT value FROM nls_session_parameters WHERE parameter = 'NLS_DATE_FORMAT'")
        assert cursor.fetchone()[0] == "YYYY-MM-DD HH24:MI:SS"
