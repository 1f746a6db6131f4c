"""A DB-API double of python-oracledb, for unit checks only (no Oracle server runs on Linux CI).

It records what the backend asks of the driver; it does not pretend to be
a database. Live behaviour is covered by the contract suite when
POOL_TEST_ORACLE_DSN is set (tests/_db.py: OracleEngine).
"""

from __future__ import annotations

from typing import Any


class DoubleCursor:
    def __init__(self, conn: DoubleConnection) -> None:
        self.conn = conn
        self.arraysize = 100
        self.outputtypehandler = None
        self.description: list[tuple] | None = None
        self.rowcount = -1
        self._rows: list[tuple] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.conn.statements.append(sql)
        if not sql.lstrip().upper().startswith("ALTER SESSION") and sql.strip() != "COMMIT":
            self.conn.transaction_in_progress = not self.conn.autocommit or self.conn.transaction_in_progress
        self.description = [("X", str, None, None, None, None, True)]
        self._rows = [(1,)]

    def setinputsizes(self, *args: Any, **kwargs: Any) -> None:
        pass

    def fetchone(self) -> tuple | None:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[tuple]:
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int = 1) -> list[tuple]:
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def close(self) -> None:
        pass

    def __iter__(self) -> Any:
        return iter(self.fetchall())


class DoubleConnection:
    version = "19.3.0.0.0"

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.statements: list[str] = []
        self.autocommit = False
        self.stmtcachesize = 0
        self.transaction_in_progress = False
        self.healthy = True
        self.rollbacks = 0
        self.pings = 0
        self.closed = False

    def cursor(self) -> DoubleCursor:
        return DoubleCursor(self)

    def commit(self) -> None:
        self.transaction_in_progress = False

    def rollback(self) -> None:
        self.rollbacks += 1
        self.transaction_in_progress = False

    def ping(self) -> None:
        self.pings += 1
        if not self.healthy:
            raise self.error("DPY-4011: the database or network closed the connection")

    def is_healthy(self) -> bool:
        return self.healthy

    def close(self) -> None:
        self.closed = True

    error: Any = None


class DoubleDriver:
    """Replaces ``oracledb.connect``; remembers every connection it made."""

    def __init__(self, error_class: Any) -> None:
        self.connections: list[DoubleConnection] = []
        self.fail_with: BaseException | None = None
        self.error_class = error_class

    def connect(self, **kwargs: Any) -> DoubleConnection:
        if self.fail_with is not None:
            raise self.fail_with
        conn = DoubleConnection(**kwargs)
        conn.error = self.error_class
        self.connections.append(conn)
        return conn
