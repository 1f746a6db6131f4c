"""Fixtures of the heavy fault and load scenarios (marker ``heavy``).

Scenarios that restart a server or cut the network use throwaway servers
started here (never the shared ones); the others use the suite's servers,
each in a database of its own. Figures: see ``tests/reliability/_figures.py``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections

import pool_core
from tests import _servers
from tests._db import Engine, MySQLEngine, PostgresEngine
from tests.conftest import ENGINES, MYSQL_DRIVER, PG_DRIVER, RUN_ID
from tests.reliability import _figures

_ids = itertools.count()
VENDORS = ["postgresql", "mysql"]


def pytest_terminal_summary(terminalreporter) -> None:
    """State every scenario's figures in the test output, passed or not."""
    if _figures.SESSION_ROWS:
        terminalreporter.section("reliability figures")
        for row in _figures.SESSION_ROWS:
            terminalreporter.write_line(_figures.summary(row))
        terminalreporter.write_line(f"(appended to {_figures.results_path()}; "
                                    "scripts/reliability_report.py renders RELIABILITY.md)")


def make_engine(server: _servers.Server, vendor: str, label: str) -> Engine:
    """An Engine on its own new database of *server*, with a registered alias and the Note table."""
    cls = PostgresEngine if vendor == "postgresql" else MySQLEngine
    driver = ("psycopg3" if PG_DRIVER == "psycopg" else "psycopg2") if vendor == "postgresql" else MYSQL_DRIVER
    e = cls(server, f"{RUN_ID}_{label}_{next(_ids)}", driver)
    e.create_database()
    e.alias = e.make_alias()
    e.create_tables()
    connections.close_all()
    pool_core.dispose()  # the set-up connection must not count in the scenario
    return e


def drop_engine(e: Engine) -> None:
    e.cleanup_aliases()
    connections.close_all()
    pool_core.dispose()
    try:
        e.admin_close()
        e.drop_database()
    finally:
        e.admin_close()


def private_engine(label: str, *, before_drop: Callable[[Engine], None] | None = None) -> Any:
    """A fixture: an Engine per vendor on the session's private (restartable) servers.

    *before_drop* runs before the database is dropped (e.g. resume a server a
    failed test left stopped).
    """

    @pytest.fixture(params=VENDORS)
    def eng(request, private_servers, fresh_pools):
        e = make_engine(private_servers[request.param], request.param, label)
        yield e
        if before_drop is not None:
            before_drop(e)
        drop_engine(e)

    return eng


def start_and_join(threads: list[threading.Thread], seconds: float) -> None:
    """Start *threads*, join each for up to *seconds*; fail naming those still running (a deadlock)."""
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds)
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"deadlock? {len(alive)} threads still running after {seconds} s: {alive[:10]}"


def run_threads(worker: Callable[[int], None], count: int, seconds: float) -> None:
    """Run worker(0..count-1) in *count* threads (see start_and_join)."""
    start_and_join([threading.Thread(target=worker, args=(n,), name=f"worker-{n}") for n in range(count)], seconds)


def shared_server(vendor: str) -> _servers.Server:
    return next(e.server for e in ENGINES if e.vendor == vendor)


@pytest.fixture(scope="session")
def private_servers() -> Iterator[dict[str, _servers.Server]]:
    """A throwaway PostgreSQL and MariaDB for this session, restartable."""
    servers = {"postgresql": _servers.start_private_postgres(), "mysql": _servers.start_private_mariadb()}
    yield servers
    for s in servers.values():
        for stop in s.stop:
            stop()


@pytest.fixture
def fresh_pools() -> Iterator[None]:
    connections.close_all()
    pool_core.dispose()
    pool_core.reset_defaults()
    yield
    connections.close_all()
    pool_core.dispose()
    pool_core.reset_defaults()


def _established_client_ports(server_port: int) -> set[int]:
    """Local ports of this machine's ESTABLISHED TCP connections to *server_port* (client side)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, remote, state = f[1], f[2], f[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class Monitor:
    """Counts the server's sessions on one database from its own admin connection, until stopped.

    ``peak`` counts sessions still open at both ends: a session whose client
    already closed its socket (an overflow connection the pool just closed)
    lingers on the server for a moment until the backend exits; those are
    counted apart in ``peak_raw``. A sample that fails (server down) is
    skipped; the admin connection is reopened on the next one.
    """

    def __init__(self, engine: Engine, via_port: int | None = None, pool_alias: str | None = None) -> None:
        # Clients reach the server through a proxy on via_port: then ``peak``
        # is the pool's own count of open connections for pool_alias, and
        # ``peak_raw`` the established client sockets to the proxy (driver
        # leftovers included: see the CONNECT_TIMEOUT notes in the README).
        self._via_port = via_port
        self._pool_alias = pool_alias
        self._probe = type(engine)(engine.server, engine.dbname, engine.driver)
        self.peak = 0
        self.peak_raw = 0
        self.samples = 0
        self.sessions_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._probe.admin_close()

    def _sessions(self) -> dict[int, int | None]:
        """Server session id -> the client's TCP port (None if not over TCP)."""
        p = self._probe
        if p.vendor == "postgresql":
            rows = p.q("SELECT pid, client_port FROM pg_stat_activity WHERE datname = %s "
                       "AND pid <> pg_backend_pid()", [p.dbname])
            return {int(i): (int(port) if port and port > 0 else None) for i, port in rows}
        rows = p.q("SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE DB = %s "
                   "AND ID <> CONNECTION_ID()", [p.dbname])
        out: dict[int, int | None] = {}
        for i, host in rows:
            port = str(host or "").rpartition(":")[2]
            out[int(i)] = int(port) if port.isdigit() else None
        return out

    def sample(self) -> int:
        if self._via_port is not None:
            stats = pool_core.stats(self._pool_alias) or {}
            live = stats.get("connections_open", 0)
            raw = len(_established_client_ports(self._via_port))
        else:
            sessions = self._sessions()
            client_ports = _established_client_ports(self._probe.server.port)
            live = sum(1 for port in sessions.values() if port is None or port in client_ports)
            raw = len(sessions)
            self.sessions_seen |= set(sessions)
        self.samples += 1
        self.peak = max(self.peak, live)
        self.peak_raw = max(self.peak_raw, raw)
        return live

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - the server may be restarting
                try:
                    self._probe.admin_close()
                except Exception:  # noqa: BLE001
                    self._probe._admin = None
                self._stop.wait(0.05)
            self._stop.wait(0.02)  # sampling must not starve the load of CPU


def wait_until(predicate, seconds: float, what: str) -> None:
    """Poll *predicate* until true; fail naming *what* after *seconds*."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")
