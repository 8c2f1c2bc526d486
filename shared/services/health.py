"""Health: each dependency's status, measured by a cheap real round trip."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from shared.models.api import DependencyStatus, HealthResponse


def _probe(check: Callable[[], None]) -> DependencyStatus:
    start = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure means "down"; the reason is reported
        return DependencyStatus(status="down", error=f"{type(exc).__name__}: {exc}"[:300])
    return DependencyStatus(status="up", latency_ms=round((time.perf_counter() - start) * 1000, 2))


def check_health(checks: dict[str, Callable[[], None]]) -> HealthResponse:
    """Run every check concurrently; overall "ok" only when all are up."""
    with ThreadPoolExecutor(max_workers=len(checks) or 1) as pool:
        results = dict(zip(checks, pool.map(_probe, checks.values()), strict=True))
    ok = all(result.status == "up" for result in results.values())
    return HealthResponse(status="ok" if ok else "degraded", dependencies=results)
