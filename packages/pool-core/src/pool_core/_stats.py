"""Counter names, the checkout wait histogram, and the pure formatting part of AliasPool.stats()."""

from __future__ import annotations

from typing import Any

#: The counters of AliasState.counters, in the order stats() lists them.
COUNTERS = (
    "connections_created",
    "connections_closed",
    "connections_recycled",
    "connections_invalidated",
    "checkouts",
    "checkout_timeouts",
    "rollbacks_on_return",
    "session_resets",
    "pings",
    "pings_failed",
    "leaks_detected",
    "connections_reclaimed",
    "queries_timed_out",
    "checkouts_shed",
)

#: Upper bounds (milliseconds) of the checkout wait histogram; +Inf is implied.
WAIT_BUCKETS_MS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0)


def new_histogram() -> list[int]:
    """Empty wait bucket counts: one per WAIT_BUCKETS_MS bound, and +Inf."""
    return [0] * (len(WAIT_BUCKETS_MS) + 1)


def quantile(buckets: list[int], count: int, q: float, maximum: float) -> float:
    """Estimate a quantile (ms) from the histogram, interpolating in its bucket."""
    if count == 0:
        return 0.0
    rank = q * count
    seen = 0
    lower = 0.0
    for i, n in enumerate(buckets):
        upper = WAIT_BUCKETS_MS[i] if i < len(WAIT_BUCKETS_MS) else maximum * 1000.0
        if n and seen + n >= rank:
            upper = min(upper, maximum * 1000.0)
            return lower + (upper - lower) * (rank - seen) / n
        seen += n
        lower = WAIT_BUCKETS_MS[i] if i < len(WAIT_BUCKETS_MS) else lower
    return maximum * 1000.0


def wait_stats(buckets: list[int], count: int, total: float, maximum: float) -> dict[str, Any]:
    """The checkout_wait_* keys of stats() from a snapshot of the histogram (*total*, *maximum* in seconds)."""
    cumulative: dict[str, int] = {}
    running = 0
    for bound, n in zip((*WAIT_BUCKETS_MS, float("inf")), buckets, strict=True):
        running += n
        cumulative["+Inf" if bound == float("inf") else f"{bound:g}"] = running
    return {
        "checkout_wait_count": count,
        "checkout_wait_ms_sum": total * 1000.0,
        "checkout_wait_ms_max": maximum * 1000.0,
        "checkout_wait_ms_p50": quantile(buckets, count, 0.50, maximum),
        "checkout_wait_ms_p95": quantile(buckets, count, 0.95, maximum),
        "checkout_wait_ms_p99": quantile(buckets, count, 0.99, maximum),
        "checkout_wait_ms_buckets": cumulative,
    }
