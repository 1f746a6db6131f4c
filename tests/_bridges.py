"""Checks that the JDBC/ODBC pieces a POOL_TEST_BRIDGES=1 run needs are there (else fail)."""

from __future__ import annotations

import importlib.util
import os

from tests._db import MARIADB_JAR, PG_JAR

ODBC_DRIVERS = ("PostgreSQL Unicode", "MariaDB Unicode")


def require_bridges() -> None:
    missing = []
    for module in ("jpype", "pyodbc", "pool_jdbc", "pool_odbc"):
        if importlib.util.find_spec(module) is None:
            missing.append(f"Python module {module}")
    for jar in (PG_JAR, MARIADB_JAR):
        if not os.path.exists(jar):
            missing.append(f"JDBC jar {jar} (apt install libpostgresql-jdbc-java libmariadb-java)")
    if importlib.util.find_spec("pyodbc") is not None:
        import pyodbc

        for name in ODBC_DRIVERS:
            if name not in pyodbc.drivers():
                missing.append(f"ODBC driver {name!r} (apt install odbc-postgresql odbc-mariadb)")
    if importlib.util.find_spec("jpype") is not None:
        import jpype

        try:
            jpype.getDefaultJVMPath()
        except Exception as e:  # JVMNotFoundException
            missing.append(f"a Java runtime ({e}; apt install default-jre-headless)")
    if missing:
        raise RuntimeError("POOL_TEST_BRIDGES=1 but missing: " + "; ".join(missing))
