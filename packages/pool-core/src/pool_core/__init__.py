"""Connection pools for Django database backends, on SQLAlchemy's pool."""

from __future__ import annotations

from typing import Any

from .__about__ import __version__
from ._lease import pinned
from .errors import PoolError, PoolForkError, PoolTimeout, QueryTimeout
from .mixin import PoolingMixin
from .options import PoolOptions, get_defaults, parse_options, reset_defaults, setup
from .registry import close_idle, dispose, drain, warm

__all__ = [
    "PoolError",
    "PoolForkError",
    "PoolOptions",
    "PoolTimeout",
    "PoolingMixin",
    "QueryTimeout",
    "__version__",
    "close_idle",
    "dispose",
    "drain",
    "get_defaults",
    "parse_options",
    "pinned",
    "reset_defaults",
    "setup",
    "stats",
    "warm",
]


def stats(alias: str | None = None) -> Any:
    """Gauges and counters of this process's pools.

    With *alias*, that alias's dict, or None before its first checkout in
    this process; without, a dict of alias -> dict for every live pool.
    """
    from .registry import all_pools, get_existing

    if alias is not None:
        pool = get_existing(alias)
        return None if pool is None else pool.stats()
    return {name: pool.stats() for name, pool in all_pools().items()}
