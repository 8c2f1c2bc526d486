"""Health (SPEC 13): each dependency's status, measured by a cheap real round
trip, and whether the service can still do its job.

``ok``: everything is up. ``degraded``: a dependency is down but events are
still accepted (the queues are up) and the views still answer (Redis falls
back to PostgreSQL and the other way round). ``down``: events cannot be
accepted (the queue storage is unreachable); only then is the answer a 503,
so a load balancer does not take instances out for a cache outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from shared.models.api import DependencyStatus, HealthResponse

# The dependency without which no event can be accepted.
ESSENTIAL = "queue"


def _probe(check: Callable[[], None]) -> DependencyStatus:
    start = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure means "down"; the reason is reported
        return DependencyStatus(status="down", error=f"{type(exc).__name__}: {exc}"[:300])
    return DependencyStatus(status="up", latency_ms=round((time.perf_counter() - start) * 1000, 2))


def check_health(
    checks: dict[str, Callable[[], None]],
    poison_counts: Callable[[], dict[str, int]] | None = None,
) -> HealthResponse:
    """Run every check concurrently; then count the poison queues when storage is up."""
    with ThreadPoolExecutor(max_workers=len(checks) or 1) as pool:
        results = dict(zip(checks, pool.map(_probe, checks.values()), strict=True))
    up = {name: result.status == "up" for name, result in results.items()}
    if all(up.values()):
        status = "ok"
    elif up.get(ESSENTIAL, True):
        status = "degraded"
    else:
        status = "down"
    counts = None
    if poison_counts is not None and up.get(ESSENTIAL, True):
        try:
            counts = poison_counts()
        except Exception:  # counted next time; the probe above already reports storage
            counts = None
    return HealthResponse(status=status, dependencies=results, poison_queues=counts)
