"""A real Celery app for the prefork scenario (tests/reliability/test_async_queues.py).

Settings come from the webapp's (tests/reliability/webapp/settings.py) plus
POOL_CELERY_BROKER (the broker URL), POOL_CELERY_QUEUE (a queue of this run
only) and POOL_CELERY_PREFIX (a Redis key prefix of this run only). With
POOL_CELERY_MAIN_HOLDS set, the worker's main process uses the ORM before it
forks its children and keeps that connection checked out: the children must
never use that session. Each task logs ``OK pid backend t0 t1 tag open``
(the webapp's format) to POOL_SITE_LOG; the main process writes its session
id to ``main.backend`` there.
"""

import os
import time

import django
from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.reliability.webapp.settings")
django.setup()

from django.db import connection  # noqa: E402

import pool_core  # noqa: E402
from tests.reliability.webapp.views import log  # noqa: E402
from tests.testapp.models import Note  # noqa: E402

app = Celery("pool_reliability")
app.conf.update(
    broker_url=os.environ["POOL_CELERY_BROKER"],
    broker_transport_options={"global_keyprefix": os.environ.get("POOL_CELERY_PREFIX", "")},
    task_default_queue=os.environ["POOL_CELERY_QUEUE"],
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


def _session_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT CONNECTION_ID()")
        return int(cursor.fetchone()[0])


@worker_init.connect
def _main_process_uses_the_orm(**kwargs):
    if os.environ.get("POOL_CELERY_MAIN_HOLDS"):
        Note.objects.exists()
        backend = _session_id()  # stays checked out across the fork of every child
        with open(os.path.join(os.environ["POOL_SITE_LOG"], "main.backend"), "w") as f:
            f.write(f"{os.getpid()} {backend}\n")


@app.task(name="orm_task")
def orm_task(i):
    """One ORM write and the server's id of the session; Celery's Django fixup returns it after the task."""
    pid = os.getpid()
    tag = f"c-{pid}-{i}"
    t0 = time.monotonic()
    try:
        Note.objects.create(text=tag, n=i)
        backend = _session_id()
        opened = pool_core.stats("default")["connections_open"]
    except Exception as e:
        log(f"ERR {pid} {type(e).__name__}: {e}".replace("\n", " "))
        raise
    log(f"OK {pid} {backend} {t0:.6f} {time.monotonic():.6f} {tag} {opened} 0.0")
    return tag
