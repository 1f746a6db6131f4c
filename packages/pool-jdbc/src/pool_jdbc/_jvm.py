"""Starting the JVM on first use, once per process, and refusing it after fork.

A JVM cannot survive ``fork()``: its threads stay in the parent, so the
child's first call into Java would hang. A child forked after the JVM
started is marked here (``os.register_at_fork``) and every JDBC call in it
raises a clear error instead.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from pool_core import PoolForkError

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "forked": False}
_added: set[str] = set()

FORK_MESSAGE = (
    "DATABASES[{alias!r}]: the JVM was started in process {parent} before this "
    "process forked from it; a JVM does not survive fork(), so JDBC cannot be "
    "used in this child. Start the JVM (first JDBC connection) after forking, "
    "e.g. without gunicorn --preload, or use the 'spawn' start method."
)


def _after_fork_in_child() -> None:
    jpype = sys.modules.get("jpype")
    if _state["pid"] is not None or (jpype is not None and jpype.isJVMStarted()):
        _state["forked"] = True
        _state["pid"] = _state["pid"] or "the parent"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked() -> bool:
    """True in a child forked after this process (or an ancestor) started the JVM."""
    return bool(_state["forked"])


def check_not_forked(alias: str) -> None:
    if _state["forked"]:
        raise PoolForkError(FORK_MESSAGE.format(alias=alias, parent=_state["pid"]))


def _import_jpype(alias: str) -> Any:
    try:
        import jpype
        import jpype.dbapi2  # noqa: F401
    except ImportError as e:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]: the JDBC backends need JPype1 "
            f"(pip install pool-jdbc): {e}"
        ) from e
    return jpype


def classpath(option: Any, alias: str) -> list[str]:
    """Jar paths from the CLASSPATH environment variable and OPTIONS['CLASSPATH']."""
    paths = [p for p in os.environ.get("CLASSPATH", "").split(os.pathsep) if p]
    if option is None:
        return paths
    if isinstance(option, str):
        option = [p for p in option.split(os.pathsep) if p]
    if not isinstance(option, Iterable) or not all(isinstance(p, (str, os.PathLike)) for p in option):
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]: OPTIONS['CLASSPATH'] must be a list of jar paths, "
            f"got {type(option).__name__}."
        )
    return paths + [os.fspath(p) for p in option]


def ensure_started(alias: str, jars: list[str]) -> Any:
    """Start the JVM if needed (thread-safe) and make *jars* loadable; return jpype."""
    check_not_forked(alias)
    jpype = _import_jpype(alias)
    missing = [p for p in jars if "*" not in p and not os.path.exists(p)]
    if missing:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]: OPTIONS['CLASSPATH'] (or $CLASSPATH) names "
            f"jar(s) that do not exist: {', '.join(missing)}"
        )
    with _lock:
        if not jpype.isJVMStarted():
            try:
                # UTC default time zone: java.sql.Timestamp values then map
                # to naive UTC datetimes and back.
                jpype.startJVM("-Duser.timezone=UTC", classpath=list(jars), convertStrings=False)
            except Exception as e:  # JVMNotFoundException, OSError, ...
                raise ImproperlyConfigured(
                    f"DATABASES[{alias!r}]: cannot start a JVM for JDBC ({type(e).__name__}: {e}). "
                    "Install a Java runtime (e.g. apt install default-jre-headless) or set JAVA_HOME."
                ) from e
            _added.update(jars)
            if threading.current_thread() is not threading.main_thread():
                # The creating thread is a non-daemon Java thread: if it is
                # not detached, the JVM's shutdown at interpreter exit waits
                # for it forever. Re-attach it as a daemon (JPype does the
                # same for every other thread it attaches).
                thread = jpype.JClass("java.lang.Thread")
                thread.detach()
                thread.attachAsDaemon()
        else:
            for jar in jars:
                if jar not in _added:
                    jpype.addClassPath(jar)
                    _added.add(jar)
        if _state["pid"] is None:
            _state["pid"] = os.getpid()
    return jpype
