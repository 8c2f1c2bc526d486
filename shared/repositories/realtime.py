"""Redis: the real-time state (progress bars, leaderboards, notifications,
live dashboards, roll-up counters), every key under one configurable prefix."""

from __future__ import annotations

from functools import lru_cache

import redis

from shared.settings import get_settings


class RealtimeRepository:
    """Redis access for the real-time views."""

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
        )

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    def ping(self) -> None:
        """Raise if Redis does not answer."""
        self.client.ping()

    def close(self) -> None:
        self.client.close()


@lru_cache(maxsize=4)
def _realtime(url: str, prefix: str) -> RealtimeRepository:
    return RealtimeRepository(url, prefix)


def get_realtime() -> RealtimeRepository:
    """The process-wide Redis repository for the current settings."""
    s = get_settings()
    return _realtime(s.redis_url, s.redis_prefix)
