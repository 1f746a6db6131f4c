"""One request = one pooled checkout: a write, the server's id of the connection, a log line."""

import itertools
import json
import os
import sys
import threading
import time
import traceback

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpResponse

import pool_core
from pool_core.registry import get_existing
from tests.testapp.models import Note

_fds: dict[int, int] = {}
_lock = threading.Lock()
_seq = itertools.count()


def log(line: str) -> None:
    pid = os.getpid()
    fd = _fds.get(pid)
    if fd is None:
        with _lock:
            fd = _fds.get(pid)
            if fd is None:
                path = os.path.join(os.environ["POOL_SITE_LOG"], f"{pid}.log")
                fd = _fds[pid] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, (line + "\n").encode())  # O_APPEND: one atomic write per line


def do_write(kind: str, close: bool = True) -> str:
    """Write a row, note which server session did it, return the connection to the pool.

    With *close* False the connection is left to Django's request_finished.
    """
    pid = os.getpid()
    tag = f"{kind}-{pid}-{next(_seq)}"
    t0 = time.monotonic()
    try:
        Note.objects.create(text=tag, n=pid)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT CONNECTION_ID()")
            backend = int(cursor.fetchone()[0])
        s = pool_core.stats("default")
    except Exception as e:
        log(f"ERR {pid} {type(e).__name__}: {e}".replace("\n", " "))
        raise
    finally:
        if close:
            connection.close()  # back to the pool before the interval ends
    t1 = time.monotonic()
    log(f"OK {pid} {backend} {t0:.6f} {t1:.6f} {tag} {s['connections_open']} {s['checkout_wait_ms_max']:.1f}")
    return tag


def write(request):
    return HttpResponse(do_write("w"))


async def awrite(request):
    return HttpResponse(await sync_to_async(do_write)("a"))


# Async views as users write them: no connection.close() in the ORM function.
async def ats(request):
    """sync_to_async(thread_sensitive=True): runs in the request's thread; request_finished returns it."""
    return HttpResponse(await sync_to_async(do_write, thread_sensitive=True)("ts", close=False))


async def ants(request):
    """sync_to_async(thread_sensitive=False): a shared executor thread that request_finished never visits."""
    return HttpResponse(await sync_to_async(do_write, thread_sensitive=False)("nts", close=False))


async def ants_closed(request):
    """thread_sensitive=False done right: the ORM function returns its connection itself."""
    return HttpResponse(await sync_to_async(do_write, thread_sensitive=False)("ntsc", close=True))


def stats(request):
    s = dict(pool_core.stats("default") or {})
    # For a failing test's message: who holds each checked-out connection, doing what.
    pool = get_existing("default")
    frames = sys._current_frames()
    held = []
    for h in list(pool._held.values()) if pool is not None else []:
        thread = h.thread()
        frame = frames.get(thread.ident) if thread is not None and thread.ident is not None else None
        held.append({"thread": h.owner_name(), "alive": h.owner_alive(), "seconds": round(time.monotonic() - h.since, 1),
                     "now_in": traceback.format_stack(frame, limit=6) if frame is not None else None})
    s["held"] = held
    return HttpResponse(json.dumps(s), content_type="application/json")
