"""Prometheus metrics for the pools (install ``pool-core[prometheus]``).

    # urls.py
    from pool_core.prometheus import metrics_view
    urlpatterns = [path("metrics", metrics_view)]

``metrics_view`` serves the default registry, with ``PoolCollector`` registered
once. Metrics carry an ``alias`` label; with ``settings.POOL_STATS_DIR`` set, the
collector reports every live process on this host (label ``pid``), so one
scrape of any worker sees them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import _housekeeper
from ._stats import WAIT_BUCKETS_MS

PREFIX = "django_db_pool"

GAUGES = (
    ("pool_size", "pool_size", "Configured POOL_SIZE."),
    ("max_overflow", "max_overflow", "Configured MAX_OVERFLOW (-1: unbounded)."),
    ("connections_open", "connections_open", "Server connections the pool holds open."),
    ("connections_idle", "connections_idle", "Open connections waiting in the pool."),
    ("connections_checked_out", "connections_checked_out", "Connections in use by the application."),
    ("overflow_in_use", "overflow_in_use", "Open connections beyond POOL_SIZE."),
    ("threads_waiting", "threads_waiting", "Threads waiting for a connection."),
)
COUNTERS = (
    ("connections_created", "Server connections opened."),
    ("connections_closed", "Server connections closed."),
    ("connections_recycled", "Connections replaced because they were older than RECYCLE."),
    ("connections_invalidated", "Connections discarded as broken."),
    ("connections_reclaimed", "Connections garbage-collected without being returned, reclaimed."),
    ("checkouts", "Successful checkouts."),
    ("checkout_timeouts", "Checkouts that timed out waiting (PoolTimeout)."),
    ("checkouts_shed", "Checkouts refused at once because MAX_WAITING threads were waiting (PoolTimeout)."),
    ("rollbacks_on_return", "Returns that needed a rollback."),
    ("session_resets", "Session resets on return (RESET_SESSION)."),
    ("pings", "Pings sent (pre-ping and KEEPALIVE_TIME)."),
    ("pings_failed", "Pings that failed."),
    ("leaks_detected", "Checkouts held longer than LEAK_DETECTION_THRESHOLD."),
    ("queries_timed_out", "Queries cut off after QUERY_TIMEOUT (their connection discarded)."),
)


class PoolCollector:
    """A custom collector reading ``pool_core.stats()`` at scrape time."""

    def __init__(self, use_stats_dir: bool | None = None) -> None:
        self.use_stats_dir = use_stats_dir

    def _processes(self) -> tuple[list[dict[str, Any]], bool]:
        directory = _housekeeper.stats_dir() if self.use_stats_dir is not False else None
        if directory:
            _housekeeper.publish(_own_pools())
            return _housekeeper.read_published(directory), True
        from . import stats

        return [{"pid": os.getpid(), "pools": stats()}], False

    def collect(self) -> Iterator[Any]:
        processes, per_pid = self._processes()
        labels = ["alias", "pid"] if per_pid else ["alias"]
        rows = [
            ([alias, str(p["pid"])] if per_pid else [alias], s)
            for p in processes
            for alias, s in sorted(p["pools"].items())
        ]
        for name, key, doc in GAUGES:
            g = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
            for values, s in rows:
                g.add_metric(values, s[key])
            yield g
        for key, doc in COUNTERS:
            c = CounterMetricFamily(f"{PREFIX}_{key}", doc, labels=labels)
            for values, s in rows:
                c.add_metric(values, s[key])
            yield c
        h = HistogramMetricFamily(
            f"{PREFIX}_checkout_wait_seconds", "Time a checkout waited for a connection.", labels=labels
        )
        for values, s in rows:
            cumulative = s["checkout_wait_ms_buckets"]
            buckets = [(f"{ms / 1000.0:g}", cumulative[f"{ms:g}"]) for ms in WAIT_BUCKETS_MS]
            buckets.append(("+Inf", cumulative["+Inf"]))
            h.add_metric(values, buckets, sum_value=s["checkout_wait_ms_sum"] / 1000.0)
        yield h


def _own_pools() -> dict[str, Any]:
    from .registry import all_pools

    return all_pools()


_registered: set[int] = set()


def register(registry: CollectorRegistry = REGISTRY) -> PoolCollector:
    """Register a PoolCollector on *registry* once; return it."""
    collector = PoolCollector()
    if id(registry) not in _registered:
        registry.register(collector)
        _registered.add(id(registry))
    return collector


def metrics_view(request: Any) -> Any:
    """A Django view serving the registry in Prometheus' text format."""
    from django.http import HttpResponse

    register(REGISTRY)
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
