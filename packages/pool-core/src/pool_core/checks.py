"""System checks for pooled aliases (registered when ``pool_core`` is an installed app).

Errors:
- ``pool_core.E001``: POOL_OPTIONS (or the global ``pool_core.setup()``) is invalid.
- ``pool_core.E002``: OPTIONS['pool'] (Django's own psycopg pool) on a pooled ENGINE.

Warnings:
- ``pool_core.W001``: POOL_OPTIONS on an ENGINE that does not pool: it is ignored.
- ``pool_core.W002``: CONN_MAX_AGE other than 0 on a pooled ENGINE: each thread keeps
  its connection checked out between requests, which defeats the pool.
- ``pool_core.W003``: MAX_OVERFLOW = -1: the pool has no bound.
- ``pool_core.W004`` (only with ``--database``): the pool bound of one process exceeds
  the connections the server accepts (PostgreSQL/MySQL: read from the server).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .mixin import PoolingMixin
from .options import parse_options

_HINT_CONN_MAX_AGE = (
    "Remove CONN_MAX_AGE (or set it to 0): with a pooled ENGINE, Django's close at the end "
    "of each request returns the connection to the pool, which keeps it open."
)


def _wrapper_class(engine: str) -> type | None:
    try:
        module = importlib.import_module(f"{engine}.base")
    except Exception:
        return None  # Django reports unloadable ENGINEs itself
    cls = getattr(module, "DatabaseWrapper", None)
    return cls if isinstance(cls, type) else None


def _is_pooled(engine: str) -> bool:
    cls = _wrapper_class(engine)
    return cls is not None and issubclass(cls, PoolingMixin)


@checks.register("pool_core")
def check_pool_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    databases: dict[str, dict[str, Any]] = getattr(settings, "DATABASES", {}) or {}
    for alias, s in databases.items():
        engine = str(s.get("ENGINE") or "")
        obj = f"DATABASES[{alias!r}]"
        pooled = _is_pooled(engine)
        if not pooled:
            if s.get("POOL_OPTIONS"):
                messages.append(
                    checks.Warning(
                        f"{obj}: POOL_OPTIONS is set but ENGINE {engine!r} does not pool; it is ignored.",
                        hint="Use a pooled ENGINE (pool_postgresql, pool_mysql, ...) or remove POOL_OPTIONS.",
                        obj=obj,
                        id="pool_core.W001",
                    )
                )
            continue
        try:
            options = parse_options(alias, s.get("POOL_OPTIONS"))
        except ImproperlyConfigured as e:
            messages.append(
                checks.Error(
                    str(e),
                    hint="See the POOL_OPTIONS table in docs/configuration.md.",
                    obj=obj,
                    id="pool_core.E001",
                )
            )
            continue
        if (s.get("OPTIONS") or {}).get("pool"):
            messages.append(
                checks.Error(
                    f"{obj}: OPTIONS['pool'] enables Django's own psycopg pool, which cannot be "
                    f"combined with the pooled ENGINE {engine!r}.",
                    hint="Remove OPTIONS['pool'] and configure POOL_OPTIONS instead.",
                    obj=obj,
                    id="pool_core.E002",
                )
            )
        conn_max_age = s.get("CONN_MAX_AGE", 0)
        if conn_max_age is None or conn_max_age != 0:
            messages.append(
                checks.Warning(
                    f"{obj}: CONN_MAX_AGE={conn_max_age!r} keeps each thread's connection checked "
                    "out of the pool between requests, which defeats the pool (threads beyond "
                    f"POOL_SIZE+MAX_OVERFLOW={options.max_connections} wait and time out).",
                    hint=_HINT_CONN_MAX_AGE,
                    obj=obj,
                    id="pool_core.W002",
                )
            )
        if options.max_connections is None:
            messages.append(
                checks.Warning(
                    f"{obj}: POOL_OPTIONS['MAX_OVERFLOW'] = -1 removes the bound on connections per process.",
                    hint="Set MAX_OVERFLOW to a number >= 0.",
                    obj=obj,
                    id="pool_core.W003",
                )
            )
    return messages


@checks.register(checks.Tags.database)
def check_server_capacity(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Compare each pool's bound with the server's limit (needs a connection)."""
    from django.db import connections

    messages: list[checks.CheckMessage] = []
    for alias in databases or ():
        wrapper = connections[alias]
        if not isinstance(wrapper, PoolingMixin):
            continue
        try:
            options = parse_options(alias, wrapper.settings_dict.get("POOL_OPTIONS"))
        except ImproperlyConfigured:
            continue  # E001 reports it
        bound = options.max_connections
        try:
            with wrapper.cursor() as cursor:
                limit = type(wrapper).pool_server_max_connections(cursor)
        except Exception:
            continue  # unreachable servers are reported by Django's own checks/commands
        if limit is not None and (bound is None or bound > limit):
            obj = f"DATABASES[{alias!r}]"
            messages.append(
                checks.Warning(
                    f"{obj}: one process may open POOL_SIZE+MAX_OVERFLOW="
                    f"{'unbounded' if bound is None else bound} connections, more than the "
                    f"{limit} the server accepts for clients.",
                    hint="Lower POOL_SIZE/MAX_OVERFLOW, or raise the server's max_connections; "
                    "remember the total is processes x (POOL_SIZE + MAX_OVERFLOW).",
                    obj=obj,
                    id="pool_core.W004",
                )
            )
    return messages
