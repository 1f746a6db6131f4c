"""Release smoke test, run by check.py with ``python -I`` inside a clean virtualenv.

It sees only what that venv has: the pool-core wheel, one vendor wheel, its driver
and Django. Argument: a JSON object (see check.py). Prints one line
``SMOKE-OK <json>`` on success; any failure raises (non-zero exit).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import sys


def fail(message: str) -> None:
    raise SystemExit(f"SMOKE-FAIL {message}")


def check_installed(cfg: dict) -> dict:
    """Only the two pool-* distributions, from this venv, at the expected versions."""
    pools = sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()
                   if d.metadata["Name"].lower().startswith("pool-"))
    expected = sorted({"pool-core", cfg["dist"]})
    if pools != expected:
        fail(f"installed pool-* distributions are {pools}, expected exactly {expected}")
    versions = {name: importlib.metadata.version(name) for name in expected}
    if versions["pool-core"] != cfg["core_version"]:
        fail(f"pool-core {versions['pool-core']} installed, expected {cfg['core_version']}")
    if versions[cfg["dist"]] != cfg["version"]:
        fail(f"{cfg['dist']} {versions[cfg['dist']]} installed, expected {cfg['version']}")
    import pool_core

    if not os.path.realpath(pool_core.__file__).startswith(os.path.realpath(sys.prefix)):
        fail(f"pool_core imported from {pool_core.__file__}, outside the venv {sys.prefix}")
    return versions


def configure(cfg: dict) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={"default": cfg["database"]},
        INSTALLED_APPS=["django.contrib.contenttypes"],  # django-tenants imports ContentType
        USE_TZ=True,
        TIME_ZONE="UTC",
        LOGGING_CONFIG=None,
    )
    django.setup()


def smoke_server(cfg: dict) -> dict:
    from django.db import connections

    connection = connections["default"]

    import pool_core

    pid_sql = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}[cfg["server"]]
    if not isinstance(connection, pool_core.PoolingMixin):
        fail(f"{cfg['database']['ENGINE']}: DatabaseWrapper is not a pool_core.PoolingMixin")
    pids = []
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            if cursor.fetchone()[0] != 1:
                fail("SELECT 1 did not return 1")
            cursor.execute(pid_sql)
            pids.append(int(cursor.fetchone()[0]))
        connection.close()  # back to the pool
    if pids[0] != pids[1]:
        fail(f"second checkout used backend {pids[1]}, not the pooled {pids[0]}")
    stats = pool_core.stats("default")
    if stats is None:
        fail("pool_core.stats('default') is None after two checkouts")
    if stats.get("checkouts", 0) < 2 or stats.get("connections_created") != 1:
        fail(f"pool_core.stats('default') does not show one connection checked out twice: {stats}")
    pool_core.dispose()
    return {"backend_pid": pids[0], "checkouts": stats["checkouts"],
            "connections_created": stats["connections_created"], "vendor": connection.vendor}


def smoke_no_server(cfg: dict) -> dict:
    from django.db import connections

    connection = connections["default"]

    import pool_core

    if not isinstance(connection, pool_core.PoolingMixin):
        fail(f"{cfg['database']['ENGINE']}: DatabaseWrapper is not a pool_core.PoolingMixin")
    try:
        connection.ensure_connection()
    except Exception as exc:  # noqa: BLE001 - we classify it below
        name = f"{type(exc).__module__}.{type(exc).__qualname__}"
        allowed = tuple(_resolve(p) for p in cfg["expect_error"])
        if not isinstance(exc, allowed):
            fail(f"connect raised {name}: {exc}; expected one of {cfg['expect_error']}")
        message = str(exc)
        if not message.strip():
            fail(f"connect raised {name} with an empty message")
        password = cfg["database"].get("PASSWORD")
        if password and password in message:
            fail(f"the error message shows the password: {message}")
        return {"error": name, "message": message[:200]}
    fail("connect to a port where nothing listens succeeded")
    return {}


def _resolve(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    result = {"versions": check_installed(cfg)}
    configure(cfg)
    base = importlib.import_module(cfg["database"]["ENGINE"] + ".base")
    result["wrapper"] = f"{base.DatabaseWrapper.__module__}.{base.DatabaseWrapper.__qualname__}"
    import django

    result["django"] = django.__version__
    if cfg["server"] == "none":
        result.update(smoke_no_server(cfg))
    else:
        result.update(smoke_server(cfg))
    print("SMOKE-OK " + json.dumps(result))


if __name__ == "__main__":
    main()
