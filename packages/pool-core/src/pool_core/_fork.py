"""Making inherited sockets harmless in a forked child.

A child process must never read, write or close a socket it inherited from
its parent: a driver's close (libpq's Terminate, MySQL's COM_QUIT) would end
the parent's server session. Pointing the file descriptor at /dev/null first
makes any later write or close in the child a no-op for the parent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

#: What a child keeps alive so that no destructor or finaliser of the parent's
#: connections ever runs in it: driver connections whose socket could not be
#: detached, and the pool's proxied connections (keep()).
_orphans: list[Any] = []


def keep(proxied: Any) -> None:
    """Keep a parent's proxied connection alive in this child for good.

    Freed, SQLAlchemy's finaliser would return it through the pool's
    listeners, which take locks (the pool's, SQLAlchemy's queue mutex) that
    a thread of the parent may have held at the fork: a thread this child
    does not have, so the after-fork hook would wait for them for ever.
    """
    _orphans.append(proxied)


def neutralize(dbapi_connection: Any, fileno: Callable[[Any], int | None]) -> None:
    """Detach *dbapi_connection* from its socket without touching the server.

    If the descriptor cannot be found, the object is kept alive forever so
    that its destructor never runs in this process.
    """
    try:
        fd = fileno(dbapi_connection)
    except Exception:
        fd = None
    if fd is None or fd < 0:
        _orphans.append(dbapi_connection)
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(devnull, fd)
    except OSError:
        _orphans.append(dbapi_connection)
    finally:
        os.close(devnull)
