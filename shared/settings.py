"""Settings, read from the environment (Azure app settings; locally the
``Values`` of local.settings.json, which both hosts export, the real
environment winning)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from shared import limits
from shared.models.access import AuthMode

DEV_STORAGE = "UseDevelopmentStorage=true"
# Entra ID's object id: stable per user and tenant, a UUID.
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"setting {name} must be positive, got {value}")
    return value


def _delays(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        delays = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(f"setting {name} must be comma-separated seconds, got {raw!r}") from None
    if not delays or any(delay < 0 for delay in delays):
        raise ValueError(f"setting {name} needs at least one delay, none negative: {raw!r}")
    return delays


def _auth_mode() -> AuthMode:
    raw = os.environ.get("AUTH_MODE", "").strip().lower() or AuthMode.KEYS.value
    try:
        return AuthMode(raw)
    except ValueError:
        choices = " or ".join(mode.value for mode in AuthMode)
        raise ValueError(f"setting AUTH_MODE must be {choices}, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    storage_connection: str
    archive_connection: str
    postgres_dsn: str
    postgres_timeout_seconds: int
    redis_url: str
    redis_prefix: str
    rollup_bucket_seconds: int
    persist_queue: str
    archive_queue: str
    realtime_queue: str
    archive_table_prefix: str
    payload_container: str
    retry_after_seconds: int
    # Retention (SPEC 9): detailed events older than this are deleted by the
    # daily enforce_retention timer, and not stored again if redelivered.
    retention_postgres_days: int
    retention_archive_days: int
    # Outages (SPEC 13): how a sink's message waits for a dependency to come back.
    sink_retry_delays: tuple[int, ...]
    sink_retry_horizon_seconds: int
    # People (SPEC 10): what the host checks, and which claim holds the user id.
    auth_mode: AuthMode
    auth_user_id_claim: str

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        storage = env("AzureWebJobsStorage") or DEV_STORAGE
        return cls(
            storage_connection=storage,
            archive_connection=env("ARCHIVE_STORAGE_CONNECTION") or storage,
            postgres_dsn=env("POSTGRES_DSN") or "postgresql://postgres@127.0.0.1:5432/activity",
            postgres_timeout_seconds=_int("POSTGRES_TIMEOUT_SECONDS", 10),
            redis_url=env("REDIS_URL") or "redis://localhost:6379/0",
            redis_prefix=env("REDIS_PREFIX") or "activity:",
            rollup_bucket_seconds=_int("ROLLUP_BUCKET_SECONDS", 60),
            # The queue trigger names read the same settings (%PERSIST_QUEUE%).
            persist_queue=env("PERSIST_QUEUE") or "activity-persist",
            archive_queue=env("ARCHIVE_QUEUE") or "activity-archive",
            realtime_queue=env("REALTIME_QUEUE") or "activity-realtime",
            archive_table_prefix=env("ARCHIVE_TABLE_PREFIX") or "activityarchive",
            payload_container=env("PAYLOAD_CONTAINER") or "activity-payloads",
            retry_after_seconds=_int("RETRY_AFTER_SECONDS", 5),
            # Two years of detail for reports; seven for the compliance archive
            # (a common school-records schedule). Set per institution.
            retention_postgres_days=_int("RETENTION_POSTGRES_DAYS", 730),
            retention_archive_days=_int("RETENTION_ARCHIVE_DAYS", 2555),
            sink_retry_delays=_delays("SINK_RETRY_DELAYS", limits.SINK_RETRY_DELAYS_SECONDS),
            sink_retry_horizon_seconds=_int(
                "SINK_RETRY_HORIZON_SECONDS", int(limits.SINK_RETRY_HORIZON.total_seconds())
            ),
            auth_mode=_auth_mode(),
            auth_user_id_claim=env("AUTH_USER_ID_CLAIM") or OBJECT_ID_CLAIM,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()``."""
    return Settings.from_env()
