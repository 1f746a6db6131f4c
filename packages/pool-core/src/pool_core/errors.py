"""Errors raised by the pools. All are Django's, so ``except DatabaseError`` works."""

from __future__ import annotations

from django.db.utils import OperationalError

__all__ = ["PoolError", "PoolTimeout", "PoolForkError", "QueryTimeout"]


class PoolError(OperationalError):
    """Base class of the runtime errors of pool_core."""

    __module__ = "pool_core"


class PoolTimeout(PoolError):
    """No connection became free within TIMEOUT seconds."""

    __module__ = "pool_core"


class PoolForkError(PoolError):
    """A connection or JVM inherited from a parent process was about to be used."""

    __module__ = "pool_core"


class QueryTimeout(PoolError):
    """A query got no answer within QUERY_TIMEOUT; its connection was shut down and discarded."""

    __module__ = "pool_core"
