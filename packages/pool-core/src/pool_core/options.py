"""POOL_OPTIONS parsing and validation.

Pure code: no driver, no server, no Django settings access at import time.
Every option is documented once here and once in the table of docs/configuration.md.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "PoolOptions",
    "parse_options",
    "setup",
    "reset_defaults",
    "get_defaults",
    "check_connect_timeout",
]


@dataclass(frozen=True)
class PoolOptions:
    """Validated pool settings for one alias.

    *pool_size*: connections kept open in the pool (>= 1).
    *max_overflow*: extra connections allowed under load (>= -1; -1 means
    unbounded, which defeats the bound), kept until idle *idle_timeout*.
    *timeout*: seconds a checkout waits for a free connection (> 0).
    *recycle*: seconds after which a connection is replaced at checkout
    (None or -1 disables).
    *pre_ping*: validate a connection before handing it out, but only if it
    sat idle at least *pre_ping_idle* seconds or its last use raised an error.
    *echo*: log pool events through SQLAlchemy's pool logger ("debug" for more).
    *use_lifo*: hand out the most recently returned connection first.
    *reset_session*: fully reset server session state on return
    (PostgreSQL ``DISCARD ALL``, MySQL/MariaDB reset-connection).
    *leak_detection_threshold*: seconds a connection may be held before a
    warning with the checkout stack is logged (None disables).
    *connect_timeout*: seconds a checkout may spend opening a connection
    (passed to the driver unless OPTIONS sets its own); None leaves it to
    the driver, which may wait forever on a silent network.
    *validation_timeout*: seconds a pre-ping may wait for its answer (and
    never longer than *connect_timeout*); the socket of a ping that does not
    answer in time is shut down and the connection replaced. None: unbounded.
    *query_timeout*: seconds a query (execute, commit, rollback) may wait on
    the server before its socket is shut down: the query fails with an
    OperationalError and the connection is discarded. None: off.
    *idle_timeout*: seconds a connection beyond *pool_size* may sit idle
    before the housekeeper closes it (None or -1: never; 0: closed when
    returned, SQLAlchemy's overflow behaviour). Bounded pools only.
    *max_waiting*: most threads that may wait for a connection; a checkout
    beyond that fails at once with PoolTimeout (0: no limit).
    *min_idle*: connections pool_core.warm() opens, and IDLE_TIMEOUT never
    closes below (with *pool_size*); at most the bound.
    *init_fail_timeout*: seconds pool_core.warm() keeps trying to connect
    before it raises OperationalError (None: it logs a warning instead and
    the pool connects on demand).
    *keepalive_time*: the housekeeper pings connections idle this many
    seconds, so firewalls and server idle timeouts leave them alone (None:
    off).
    """

    pool_size: int = 10
    max_overflow: int = 10
    timeout: float = 30.0
    recycle: float | None = 3600.0
    pre_ping: bool = True
    pre_ping_idle: float = 1.0
    echo: bool | str = False
    use_lifo: bool = True
    reset_session: bool = False
    leak_detection_threshold: float | None = None
    connect_timeout: float | None = 30.0
    validation_timeout: float | None = 5.0
    query_timeout: float | None = None
    checkout: str = "request"
    idle_timeout: float | None = 600.0
    max_waiting: int = 0
    min_idle: int = 0
    init_fail_timeout: float | None = None
    keepalive_time: float | None = None

    @property
    def max_connections(self) -> int | None:
        """The most connections one process may hold, None if unbounded."""
        if self.max_overflow < 0:
            return None
        return self.pool_size + self.max_overflow


_FIELDS = {f.name for f in fields(PoolOptions)}
# Keys of django-db-connection-pool that map to ours under another name.
_ALIASES = {"pool_pre_ping": "pre_ping", "pool_recycle": "recycle", "pool_timeout": "timeout"}

#: The longest wait any option may ask for: Python's own limit for a lock or
#: timer wait (threading.TIMEOUT_MAX), in whole seconds. Drivers may accept
#: less (see PoolingMixin.pool_connect_timeout_max).
MAX_SECONDS = int(threading.TIMEOUT_MAX)

CHECKOUT_MODES = ("request", "transaction")

_lock = threading.Lock()
_defaults = PoolOptions()


def _normalise_key(key: Any) -> str | None:
    if not isinstance(key, str):
        return None
    name = key.strip().lower()
    name = _ALIASES.get(name, name)
    return name if name in _FIELDS else None


def _fail(where: str, key: str, message: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{where}: POOL_OPTIONS[{key!r}] {message}")


def _int(where: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, key, f"must be an integer, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise _fail(where, key, f"must be >= {minimum}, got {value!r}.")
    return value


def _seconds(where: str, key: str, value: Any, *, allow_off: bool, allow_zero: bool) -> float | None:
    if allow_off and (value is None or value == -1) and not isinstance(value, bool):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        expected = "a number of seconds" + (" or None" if allow_off else "")
        raise _fail(where, key, f"must be {expected}, got {type(value).__name__} {value!r}.")
    if value != value or value in (float("inf"), float("-inf")):
        raise _fail(where, key, f"must be a finite number, got {value!r}.")
    if value > MAX_SECONDS:
        raise _fail(where, key, f"must be <= {MAX_SECONDS} seconds, got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise _fail(where, key, f"must be {bound} seconds, got {value!r}.")
    return float(value)


def _bool(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, key, f"must be True or False, got {type(value).__name__} {value!r}.")
    return value


def _validate(where: str, key: str, name: str, value: Any) -> Any:
    if name == "pool_size":
        return _int(where, key, value, 1)
    if name == "max_overflow":
        return _int(where, key, value, -1)
    if name in ("max_waiting", "min_idle"):
        return _int(where, key, value, 0)
    if name == "init_fail_timeout":
        return _seconds(where, key, value, allow_off=True, allow_zero=True)
    if name == "timeout":
        return _seconds(where, key, value, allow_off=False, allow_zero=False)
    if name == "recycle":
        return _seconds(where, key, value, allow_off=True, allow_zero=False)
    if name == "idle_timeout":
        return _seconds(where, key, value, allow_off=True, allow_zero=True)
    if name == "pre_ping_idle":
        return _seconds(where, key, value, allow_off=False, allow_zero=True)
    if name in (
        "leak_detection_threshold",
        "connect_timeout",
        "validation_timeout",
        "query_timeout",
        "keepalive_time",
    ):
        return _seconds(where, key, value, allow_off=True, allow_zero=False)
    if name == "checkout":
        if value in CHECKOUT_MODES:
            return value
        raise _fail(where, key, f"must be 'request' or 'transaction', got {value!r}.")
    if name == "echo":
        if value == "debug" or isinstance(value, bool):
            return value
        raise _fail(where, key, f"must be True, False or 'debug', got {value!r}.")
    return _bool(where, key, value)


def _apply(base: PoolOptions, raw: Mapping[Any, Any], where: str) -> PoolOptions:
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{where}: POOL_OPTIONS must be a dict, got {type(raw).__name__}.")
    changes: dict[str, Any] = {}
    seen: dict[str, Any] = {}
    for key, value in raw.items():
        name = _normalise_key(key)
        if name is None:
            known = ", ".join(sorted(n.upper() for n in _FIELDS))
            raise ImproperlyConfigured(f"{where}: unknown key POOL_OPTIONS[{key!r}]. Known keys: {known}.")
        if name in seen:
            raise ImproperlyConfigured(
                f"{where}: POOL_OPTIONS sets {name.upper()} twice ({seen[name]!r} and {key!r})."
            )
        seen[name] = key
        changes[name] = _validate(where, str(key), name, value)
    options = replace(base, **changes)

    def conflict(name: str, message: str) -> ImproperlyConfigured:
        # Names the key as written here, or where a value not set here came from.
        if name in seen:
            return _fail(where, str(seen[name]), message)
        origin = " (from pool_core.setup())" if where.startswith("DATABASES") else ""
        return ImproperlyConfigured(f"{where}: {name.upper()}{origin} {message}")

    bound = options.max_connections
    if bound is not None and options.min_idle > bound:
        raise conflict(
            "min_idle", f"must be <= POOL_SIZE + MAX_OVERFLOW ({bound}), got {options.min_idle!r}."
        )
    if bound is None:
        # MAX_OVERFLOW=-1: no bound, so no slots for a keepalive ping to take
        # a connection out with, and only POOL_SIZE idle connections are kept.
        if options.keepalive_time is not None:
            raise conflict(
                "keepalive_time",
                "needs a bounded pool: it is ignored with MAX_OVERFLOW=-1 (no limit); set MAX_OVERFLOW >= 0.",
            )
        if options.min_idle > options.pool_size:
            raise conflict(
                "min_idle",
                f"must be <= POOL_SIZE ({options.pool_size}) with MAX_OVERFLOW=-1, got {options.min_idle!r}.",
            )
    return options


def parse_options(alias: str, raw: Mapping[Any, Any] | None) -> PoolOptions:
    """Return the validated options of *alias*, on top of the global defaults.

    Raise ImproperlyConfigured naming the alias and the key on any unknown key,
    wrong type or impossible value.
    """
    return _apply(_defaults, {} if raw is None else raw, f"DATABASES[{alias!r}]")


def setup(**defaults: Any) -> None:
    """Change the defaults every pool created afterwards starts from.

    Compatible with ``dj_db_conn_pool.setup(pool_size=..., max_overflow=...)``;
    keys are case-insensitive. Pools that already exist keep their options.
    """
    global _defaults
    with _lock:
        _defaults = _apply(_defaults, defaults, "pool_core.setup()")


def reset_defaults() -> None:
    """Restore the built-in defaults (mainly for tests)."""
    global _defaults
    with _lock:
        _defaults = PoolOptions()


def get_defaults() -> PoolOptions:
    return _defaults


def check_connect_timeout(alias: str, options: PoolOptions, limit: int | None, driver: str) -> None:
    """Raise ImproperlyConfigured if CONNECT_TIMEOUT exceeds *limit*, the driver's largest."""
    value = options.connect_timeout
    if value is None or limit is None or value <= limit:
        return
    raise _fail(
        f"DATABASES[{alias!r}]",
        "CONNECT_TIMEOUT",
        f"must be <= {limit} seconds with {driver} (the largest connect timeout it accepts), got {value!r}.",
    )
