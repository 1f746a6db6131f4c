"""Scenario 1b, a database outage longer than TIMEOUT.

The throwaway server is stopped while the pool holds open connections, and
stays down for longer than TIMEOUT while requests keep coming (each fails with
Django's OperationalError); once it is started again the next requests
succeed, with no restart of the process and no call into the pool: the pool
refills by itself, within its bound.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.db.utils import OperationalError

import pool_core
from tests import _servers
from tests.reliability.conftest import private_engine

pytestmark = pytest.mark.heavy

SIZE, OVERFLOW, TIMEOUT = 2, 2, 1.0


def _resume_if_down(e) -> None:
    if not _servers._port_open(e.server.host, e.server.port):
        e.server.resume()  # the test failed while the server was down


eng = private_engine("outage", before_drop=_resume_if_down)


def _request(eng, alias: str) -> int:
    try:
        return eng.backend_id(alias)
    finally:
        connections[alias].close()  # end of request


def _burst(eng, alias: str, threads: int, each: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(each):
                _request(eng, alias)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts)
    return errors


def test_pool_refills_after_an_outage_longer_than_timeout(eng):
    alias = eng.make_alias({"POOL_SIZE": SIZE, "MAX_OVERFLOW": OVERFLOW, "TIMEOUT": TIMEOUT})
    bound = SIZE + OVERFLOW
    assert _burst(eng, alias, bound, 5) == []
    before = set(eng.server_sessions())
    assert pool_core.stats(alias)["connections_open"] >= 1
    eng.admin_close()
    eng.server.halt()
    down = time.monotonic()
    failed: list[BaseException] = []
    # Requests keep arriving for longer than TIMEOUT while the server is down.
    while time.monotonic() - down <= 2 * TIMEOUT:
        try:
            _request(eng, alias)
        except OperationalError as e:  # Django's, naming the alias
            failed.append(e)
        else:
            raise AssertionError("a request succeeded while the server was down")
    assert failed
    assert all(repr(alias) in str(e) for e in failed), [str(e)[:200] for e in failed[:3]]
    s = pool_core.stats(alias)
    assert s["connections_checked_out"] == 0  # failed checkouts gave their slots back
    eng.server.resume()
    first = _request(eng, alias)  # the very next request works
    assert first not in before
    assert _burst(eng, alias, bound, 10) == []
    assert _burst(eng, alias, 2 * bound, 5) == []  # waits for slots still work (none leaked)
    s = pool_core.stats(alias)
    assert s["connections_checked_out"] == 0
    assert 1 <= s["connections_open"] <= bound
    assert len(eng.server_sessions()) <= bound
