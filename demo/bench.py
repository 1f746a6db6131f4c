"""Load generation through Django's WSGI handler, and a server-side connection monitor."""

from __future__ import annotations

import io
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .server import connect

# -- requests -------------------------------------------------------------------


def request(handler: Any, path: str) -> tuple[int, bytes]:
    """One GET through Django's full request cycle, as a WSGI server would do it.

    ``response.close()`` sends ``request_finished``, which is what makes Django
    close (or, pooled, give back) the request's database connection.
    """
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "demo",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "demo",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    status: list[str] = []
    response = handler(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        body = b"".join(response)
    finally:
        response.close()
    return int(status[0].split()[0]), body


@dataclass
class LoadResult:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, one per successful request
    errors: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, round(q * (len(lat) - 1)))] if lat else float("nan")


def run_load(handler: Any, path: str, total: int, workers: int) -> LoadResult:
    """Send exactly *total* requests from *workers* threads; stop early on Ctrl-C."""
    from django.db import close_old_connections

    result = LoadResult()
    lock = threading.Lock()
    issued = 0
    stop = threading.Event()

    def worker() -> None:
        nonlocal issued
        while not stop.is_set():
            with lock:
                if issued >= total:
                    return
                issued += 1
            t0 = time.perf_counter()
            try:
                code, body = request(handler, path)
                if code != 200:
                    raise RuntimeError(f"HTTP {code}: {body[:200]!r}")
            except Exception as e:
                result.errors.append(f"{type(e).__name__}: {e}")
                close_old_connections()  # as request_finished would have
                continue
            result.latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.1)  # a timeout keeps the main thread responsive to Ctrl-C
    except BaseException:
        stop.set()
        for t in threads:
            t.join(5)
        raise
    result.seconds = time.perf_counter() - t0
    return result


# -- the server's view ----------------------------------------------------------


class Monitor:
    """Samples the demo database's client connections every *interval* seconds.

    It uses its own psycopg connection (autocommit, so each query sees fresh
    statistics) and does not count itself.
    """

    _COUNT = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )

    def __init__(self, params: dict[str, str], interval: float = 0.02) -> None:
        self._db = params["dbname"]
        self._conn = connect(params, autocommit=True, application_name="pool-demo-monitor")
        self.server_version: int = self._conn.info.server_version
        self._interval = interval
        self._peak = 0
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                n = self.connections()
                if n > self._peak:
                    self._peak = n
        except BaseException as e:
            if not self._stop.is_set():
                self._error = e

    def scalar(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        """One value, read on the monitor's connection (so no session is opened)."""
        row = self._conn.execute(query, params).fetchone()
        return row[0] if row else None

    def connections(self) -> int:
        return int(self.scalar(self._COUNT, (self._db,)) or 0)

    def sessions(self) -> int | None:
        """Sessions ever opened on the database (PostgreSQL 14+), else None."""
        if self.server_version < 140000:
            return None
        n = self.scalar("SELECT sessions FROM pg_stat_database WHERE datname = %s", (self._db,))
        return None if n is None else int(n)

    def settled_sessions(self, expect_open: int, timeout: float = 3.0) -> int | None:
        """``sessions()`` once closed backends are gone and the counter stopped moving.

        Backends report their statistics asynchronously, so read until stable.
        """
        deadline = time.monotonic() + timeout
        last = self.sessions()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.sessions()
            if now == last and self.connections() <= expect_open:
                break
            last = now
        return last

    def reset_peak(self) -> None:
        self._peak = 0

    def peak(self) -> int:
        if self._error is not None:
            raise RuntimeError(f"the connection monitor failed: {self._error}") from self._error
        return self._peak

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._conn.close()
