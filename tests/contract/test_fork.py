"""Fork safety: a child never uses (or closes) a socket inherited from its parent."""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading

import pytest
from django.db import connections

import pool_core

ctx = multiprocessing.get_context("fork")


def _child_query(engine, alias, queue) -> None:
    try:
        inherited = connections[alias].connection
        inherited_dropped = inherited is None
        ids = [engine.backend_id(alias)]
        connections[alias].close()
        ids.append(engine.backend_id(alias))
        connections[alias].close()
        del inherited
        # Long-lived children (gunicorn, Celery) collect garbage: the parent's
        # pool objects die here, and must not take the parent's sessions along.
        gc.collect()
        queue.put(("ok", ids, inherited_dropped, pool_core.stats(alias)["pid"] == os.getpid()))
    except BaseException as e:  # noqa: BLE001
        queue.put(("error", repr(e), None, None))


@pytest.mark.requires("fork")
@pytest.mark.parametrize("children", [1, 3])
def test_child_opens_its_own_connections_and_parent_is_undisturbed(engine, children):
    # Three connections at fork time: one idle in the pool, one held by this
    # thread, one held by another thread.
    holding, release = threading.Event(), threading.Event()
    other_ids: list[int] = []

    def hold() -> None:
        other_ids.append(engine.backend_id(alias))
        holding.set()
        release.wait(60)
        connections[alias].close()

    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 1})
    idle_id = engine.backend_id(alias)
    connections[alias].close()
    held_id = engine.backend_id(alias)
    t = threading.Thread(target=hold)
    t.start()
    procs = []
    try:
        assert holding.wait(30)

        queue = ctx.Queue()
        procs = [ctx.Process(target=_child_query, args=(engine, alias, queue)) for _ in range(children)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
    finally:
        for p in procs:  # after a failure: no child left behind
            if p.pid is not None and p.exitcode is None:
                p.kill()
                p.join(60)
        release.set()
        t.join()

    parent_ids = {idle_id, held_id, *other_ids}
    for status, ids, inherited_was_dropped, own_pool in results:
        assert status == "ok", ids
        assert inherited_was_dropped, "the child kept the parent's checked-out connection"
        assert own_pool
        assert not (set(ids) & parent_ids), (ids, parent_ids)
    # The parent's connections all survived the children (exit included).
    alive = engine.server_sessions()
    assert held_id in alive and idle_id in alive
    assert engine.backend_id(alias) == held_id  # still the same checkout, still working
    connections[alias].close()
    assert engine.backend_id(alias) in {idle_id, held_id, *other_ids}
    connections[alias].close()


@pytest.mark.requires("fork")
def test_parent_transaction_survives_child(engine):
    """A child forked mid-transaction must not roll back or break the parent's transaction."""
    from django.db import transaction

    from tests.testapp.models import Note

    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0})
    queue = ctx.Queue()
    with transaction.atomic(using=alias):
        Note.objects.using(alias).create(text="parent-tx")
        p = ctx.Process(target=_child_query, args=(engine, alias, queue))
        p.start()
        status, ids, _, _ = queue.get(timeout=60)
        p.join(60)
        assert status == "ok", ids
        Note.objects.using(alias).create(text="parent-tx")
    assert Note.objects.using(alias).filter(text="parent-tx").count() == 2
    Note.objects.using(alias).filter(text="parent-tx").delete()


def _child_exits() -> None:
    os._exit(0)


@pytest.mark.requires("fork")
def test_a_child_forked_while_another_thread_holds_the_pools_lock_starts(engine):
    """In the child, the after-fork hook makes the inherited connections harmless
    and forgets them. They must not be freed there: SQLAlchemy's finaliser would
    return them through the pool's listeners, which take locks that a thread of
    the parent may have held at the fork, a thread the child does not have: the
    child would hang in fork() for good."""
    from pool_core.registry import get_existing

    alias = engine.make_alias({"POOL_SIZE": 2, "MAX_OVERFLOW": 0})
    engine.backend_id(alias)
    connections[alias].close()  # parked
    pool = get_existing(alias)
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with pool._lock:
            holding.set()
            release.wait(60)

    t = threading.Thread(target=hold_the_lock)
    t.start()
    child = None
    try:
        assert holding.wait(30)
        child = ctx.Process(target=_child_exits)
        child.start()
        child.join(30)  # a hang guard: it exits at once unless it hangs
        assert child.exitcode == 0, "the child hung in its after-fork hook"
    finally:
        if child is not None and child.is_alive():
            child.kill()
            child.join(10)
        release.set()
        t.join(30)
    assert pool_core.stats(alias)["connections_idle"] == 1  # the parent's, untouched
