"""Errors raised by the pools. All are Django's, so ``except DatabaseError`` works."""

from __future__ import annotations

from django.db.utils import OperationalError

__all__ = ["PoolError", "PoolTimeout", "PoolForkError"]


class PoolError(OperationalError):
    """Base class of the runtime errors of pool_core."""

    __module__ = "pool_core"


class PoolTimeout(PoolError):
    """No connection became free within TIMEOUT seconds."""

    __module__ = "pool_core"


class PoolForkError(PoolError):
    """A connection or JVM inherited from a parent process was about to be used."""

    __module__ = "pool_core"
