"""Settings, read from the environment (Azure app settings; locally the
``Values`` of local.settings.json, which both hosts export, the real
environment winning)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

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


# --- storage connections ----------------------------------------------------------
#
# A storage connection setting X is read as the Functions host reads a binding's
# `connection` (docs/deploy.md, "Storage connections"):
#
# - the host looks for `AzureWebJobsX` first, then `X`; the first that is defined
#   in any form (a value of its own, or `X__<property>` settings) is the connection;
# - a non-empty value of X itself is a connection string, and then the `X__*`
#   settings are ignored ("if the configured value is both an exact match for a
#   single setting and a prefix match for other settings, the exact match is used");
# - otherwise the connection is identity-based: `X__accountName` gives
#   https://<name>.{queue,table,blob}.core.windows.net, `X__queueServiceUri` (…)
#   gives one service's endpoint and wins over accountName for that service,
#   `X__credential=managedidentity` asks for ManagedIdentityCredential and its
#   absence for DefaultAzureCredential, `X__clientId` names a user-assigned identity.

StorageService = Literal["queue", "table", "blob"]
STORAGE_SERVICES: tuple[StorageService, ...] = ("queue", "table", "blob")
MANAGED_IDENTITY = "managedidentity"
# The host looks a connection name X up as AzureWebJobsX first.
WEBJOBS_PREFIX = "AzureWebJobs"
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
_PROPERTIES = {
    "accountname": "accountName",
    "queueserviceuri": "queueServiceUri",
    "tableserviceuri": "tableServiceUri",
    "blobserviceuri": "blobServiceUri",
    "credential": "credential",
    "clientid": "clientId",
}
# Properties the host understands that would choose another endpoint or identity
# than the app would: refused rather than silently ignored.
_UNSUPPORTED = {
    "serviceuri": "give each service's endpoint (queueServiceUri, tableServiceUri, blobServiceUri)",
    "managedidentityresourceid": "name a user-assigned identity by clientId",
    "tenantid": "only managed identities or DefaultAzureCredential are supported",
    "clientsecret": "only managed identities or DefaultAzureCredential are supported",
    "certificate": "only managed identities or DefaultAzureCredential are supported",
}


class StorageSettingError(ValueError):
    """A storage connection's settings are missing or contradictory; names the setting."""


@dataclass(frozen=True)
class StorageConnection:
    """How to reach one storage account: a connection string, or identity-based settings.

    ``name`` is the setting (or prefix) it was read from, for messages.
    """

    name: str
    # Not in the repr: a connection string may carry an account key.
    connection_string: str | None = field(default=None, repr=False)
    account_name: str | None = None
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    blob_service_uri: str | None = None
    # "managedidentity" -> ManagedIdentityCredential; None -> DefaultAzureCredential.
    credential: str | None = None
    client_id: str | None = None

    @classmethod
    def from_string(
        cls, connection_string: str, name: str = "connection string"
    ) -> StorageConnection:
        return cls(name=name, connection_string=connection_string)

    @property
    def identity_based(self) -> bool:
        return self.connection_string is None

    @property
    def managed_identity(self) -> bool:
        return self.credential == MANAGED_IDENTITY

    def service_uri(self, service: StorageService) -> str:
        """The endpoint of one service (identity-based connections only)."""
        if not self.identity_based:
            raise StorageSettingError(f"{self.name} is a connection string, not identity-based")
        explicit: str | None = getattr(self, f"{service}_service_uri")
        if explicit:
            return explicit
        if self.account_name:
            return f"https://{self.account_name}.{service}.core.windows.net"
        raise StorageSettingError(
            f"storage connection {self.name} has no {service} endpoint: set "
            f"{self.name}__{service}ServiceUri or {self.name}__accountName"
        )

    def require(self, *services: StorageService) -> StorageConnection:
        """Raise StorageSettingError unless every one of ``services`` can be reached."""
        if self.identity_based:
            for service in services:
                self.service_uri(service)
        return self

    def require_connection_string(self) -> str:
        """The connection string, for tools that only take one (benchmarks)."""
        if self.connection_string is None:
            raise StorageSettingError(
                f"{self.name} is identity-based ({self.name}__*); this needs a connection string"
            )
        return self.connection_string


def parse_storage_connection(
    name: str, environ: Mapping[str, str], services: tuple[StorageService, ...] = ()
) -> StorageConnection | None:
    """The connection a setting (or binding ``connection``) ``name`` stands for, as the
    Functions host resolves it; None when neither ``AzureWebJobs<name>`` nor ``<name>``
    is defined in any form. Raises StorageSettingError, naming the setting, when the
    settings are incomplete or cannot work, or when one of ``services`` has no endpoint.
    """
    for candidate in (f"{WEBJOBS_PREFIX}{name}", name):
        connection = _connection_section(candidate, environ)
        if connection is not None:
            return connection.require(*services)
    return None


def _connection_section(name: str, environ: Mapping[str, str]) -> StorageConnection | None:
    value = (environ.get(name) or "").strip()
    if value:
        return StorageConnection.from_string(value, name)
    prefix = f"{name}__"
    found: dict[str, tuple[str, str]] = {}  # lower-case property -> (setting, value)
    for key, raw in environ.items():
        # Property names are case-insensitive, as in the host's configuration.
        if key.startswith(prefix) and raw.strip():
            found[key[len(prefix) :].lower()] = (key, raw.strip())
    if not found:
        return None
    for prop, (key, _) in found.items():
        if prop in _UNSUPPORTED:
            raise StorageSettingError(f"setting {key} is not supported: {_UNSUPPORTED[prop]}")
    props = {_PROPERTIES[p]: v for p, (_, v) in found.items() if p in _PROPERTIES}
    credential = props.get("credential")
    if credential is not None:
        if credential.lower() != MANAGED_IDENTITY:
            raise StorageSettingError(
                f"setting {name}__credential must be '{MANAGED_IDENTITY}' (or absent, for "
                f"DefaultAzureCredential), got {credential!r}"
            )
        credential = MANAGED_IDENTITY
    account = props.get("accountName")
    if account is not None and not _ACCOUNT_NAME.fullmatch(account):
        raise StorageSettingError(
            f"setting {name}__accountName must be a storage account name (3-24 lower-case "
            f"letters and digits), got {account!r}"
        )
    uris: dict[str, str] = {}
    for service in STORAGE_SERVICES:
        setting = f"{service}ServiceUri"
        uri = props.get(setting)
        if uri is None:
            continue
        parts = urlsplit(uri)
        if parts.scheme.lower() != "https" or not parts.netloc:
            raise StorageSettingError(
                f"setting {name}__{setting} must be an https:// URI (tokens are only sent "
                f"over HTTPS), got {uri!r}"
            )
        uris[service] = uri.rstrip("/")
    if account is None and not uris:
        given = ", ".join(sorted(key for key, _ in found.values()))
        raise StorageSettingError(
            f"storage connection {name} is identity-based ({given}) but names no account: "
            f"set {name}__accountName, or {name}__queueServiceUri / __tableServiceUri / "
            f"__blobServiceUri (or {name} itself to a connection string)"
        )
    return StorageConnection(
        name=name,
        account_name=account,
        queue_service_uri=uris.get("queue"),
        table_service_uri=uris.get("table"),
        blob_service_uri=uris.get("blob"),
        credential=credential,
        client_id=props.get("clientId"),
    )


def _storage(name: str, *services: StorageService) -> StorageConnection | None:
    return parse_storage_connection(name, os.environ, services)


def _storage_settings() -> tuple[StorageConnection, StorageConnection]:
    """(AzureWebJobsStorage: queues and payload blobs, the archive's tables)."""
    storage = _storage("AzureWebJobsStorage", "queue", "blob") or StorageConnection.from_string(
        DEV_STORAGE, "AzureWebJobsStorage"
    )
    archive = _storage("ARCHIVE_STORAGE_CONNECTION", "table")
    if archive is None:
        try:
            archive = storage.require("table")
        except StorageSettingError as exc:
            raise StorageSettingError(
                f"ARCHIVE_STORAGE_CONNECTION is not set, so the archive uses {storage.name}: {exc}"
            ) from None
    return storage, archive


@dataclass(frozen=True)
class Settings:
    # Queues and payload blobs (AzureWebJobsStorage); the archive's tables.
    storage: StorageConnection
    archive_storage: StorageConnection
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
        storage, archive = _storage_settings()
        return cls(
            storage=storage,
            archive_storage=archive,
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

    # The connection strings, for tools that need one (benchmarks); raise when identity-based.
    @property
    def storage_connection(self) -> str:
        return self.storage.require_connection_string()

    @property
    def archive_connection(self) -> str:
        return self.archive_storage.require_connection_string()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()``."""
    return Settings.from_env()
