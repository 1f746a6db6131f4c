"""QUERY_TIMEOUT: Django cursor wrappers that publish when a query is in flight.

The wrapper writes the query's start time on the checkout record (two
attribute writes around the driver call) and nothing else: the housekeeper
thread (pool_core._housekeeper) wakes when the oldest query in flight reaches
its deadline and shuts down that connection's socket, so the driver's blocked
read returns with an error. The wrapper then raises pool_core.QueryTimeout (a
django.db.utils.OperationalError) and the connection is discarded on return.
No thread, timer or lock per query.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from ._sqla import info_of
from .errors import QueryTimeout

__all__ = ["DeadlineCursorWrapper", "DeadlineCursorDebugWrapper", "run_with_deadline", "timed_out"]

_monotonic = time.monotonic


def timed_out(wrapper: Any, held: Any, cause: BaseException | None) -> QueryTimeout:
    """Mark the checkout for discarding and build the error the caller raises."""
    wrapper.errors_occurred = True
    proxied = wrapper._pool_proxied
    if proxied is not None:
        info_of(proxied)["query_timed_out"] = True
    pool = wrapper._pool_current
    limit = pool.options.query_timeout if pool is not None else None
    detail = f": {cause}" if cause is not None and str(cause) else ""
    return QueryTimeout(
        f"DATABASES[{wrapper.alias!r}]: the query got no answer within QUERY_TIMEOUT={limit:g} s; "
        f"its connection was shut down and will be discarded{detail}"
    )


def run_with_deadline(wrapper: Any, held: Any, call: Any, *args: Any) -> Any:
    """*call(*args)* with *held*.query_since set while it runs."""
    since = held.query_since = _monotonic()
    try:
        result = call(*args)
    except BaseException as e:
        held.query_since = 0.0  # before reading query_fired: see AliasPool.enforce_query_timeout
        if held.query_fired == since:
            raise timed_out(wrapper, held, e) from e
        raise
    held.query_since = 0.0
    if held.query_fired == since:
        # It ended just as its socket was shut down: the connection is unusable.
        raise timed_out(wrapper, held, None)
    return result


class _Deadline:
    db: Any

    def execute(self, sql: Any, params: Any = None) -> Any:
        held = self.db._pool_held
        if held is None:
            return super().execute(sql, params)  # type: ignore[misc]
        return run_with_deadline(self.db, held, super().execute, sql, params)  # type: ignore[misc]

    def executemany(self, sql: Any, param_list: Any) -> Any:
        held = self.db._pool_held
        if held is None:
            return super().executemany(sql, param_list)  # type: ignore[misc]
        return run_with_deadline(self.db, held, super().executemany, sql, param_list)  # type: ignore[misc]

    def callproc(self, procname: Any, params: Any = None, kparams: Any = None) -> Any:
        held = self.db._pool_held
        if held is None:
            return super().callproc(procname, params, kparams)  # type: ignore[misc]
        return run_with_deadline(self.db, held, super().callproc, procname, params, kparams)  # type: ignore[misc]


class DeadlineCursorWrapper(_Deadline, CursorWrapper):
    pass


class DeadlineCursorDebugWrapper(_Deadline, CursorDebugWrapper):
    pass
