"""Shared settings for running Django's own test suite against our ENGINEs.

Used by the four settings modules beside this file (djsuite_pg,
djsuite_pool_pg, djsuite_mysql, djsuite_pool_mysql), which run.sh passes to
``tests/runtests.py --settings=...``. Modelled on Django's tests/test_sqlite.py.

Servers: PostgreSQL 127.0.0.1:5432 (user postgres, trust auth) and MariaDB /
MySQL 127.0.0.1:3306 (root, empty password), or the URLs in POOL_TEST_PG_URL /
POOL_TEST_MYSQL_URL (``postgresql://user:pass@host:port/ignored``,
``mysql://user:pass@host:port/ignored``). Only user, password, host and port
are taken from a URL: database names always come from the ``djsuite_`` prefix
below, so they cannot collide with anything else using the same server, and
each configuration has its own names so stock and pooled runs never share a
database.
"""

from __future__ import annotations

import json
import os
from urllib.parse import unquote, urlsplit

PREFIX = "djsuite_"

_SERVERS = {
    "postgresql": (
        "POOL_TEST_PG_URL",
        {"HOST": "127.0.0.1", "PORT": "5432", "USER": "postgres", "PASSWORD": ""},
    ),
    "mysql": ("POOL_TEST_MYSQL_URL", {"HOST": "127.0.0.1", "PORT": "3306", "USER": "root", "PASSWORD": ""}),
}


def server(vendor: str) -> dict[str, str]:
    env, defaults = _SERVERS[vendor]
    url = os.environ.get(env, "").strip()
    if not url:
        return dict(defaults)
    parts = urlsplit(url)
    return {
        "HOST": parts.hostname or defaults["HOST"],
        "PORT": str(parts.port or defaults["PORT"]),
        "USER": unquote(parts.username) if parts.username else defaults["USER"],
        "PASSWORD": unquote(parts.password) if parts.password else "",
    }


def databases(vendor: str, engine: str, config: str, pooled: bool) -> dict[str, dict]:
    """The ``default`` and ``other`` aliases runtests.py needs, for one configuration."""
    result = {}
    for alias in ("default", "other"):
        db = {
            "ENGINE": engine,
            **server(vendor),
            "NAME": f"{PREFIX}{config}_{alias}",
            "TEST": {"NAME": f"{PREFIX}{config}_test_{alias}"},
        }
        if pooled:
            # DJSUITE_POOL_OPTIONS='{"RESET_SESSION": true}' tries other options.
            db["POOL_OPTIONS"] = json.loads(os.environ.get("DJSUITE_POOL_OPTIONS") or "{}")
        result[alias] = db
    return result


SECRET_KEY = "django_tests_secret_key"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
]

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = False

# Writes the failing/erroring test ids to $DJSUITE_RESULT_JSON for run.sh.
TEST_RUNNER = "djsuite_runner.RecordingRunner"
