"""The app's configuration as the host reads it: local.settings.json, host.json, app settings."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from devhost.timespan import parse_timespan
from shared.settings import StorageConnection, StorageSettingError, parse_storage_connection

DEFAULT_STORAGE_SETTING = "AzureWebJobsStorage"
# Azure Storage allows at most 32 messages per receive, so the host caps batchSize there too.
MAX_BATCH_SIZE = 32
# The real queue listener never polls faster than this, whatever maxPollingInterval says.
MIN_POLLING_INTERVAL = timedelta(milliseconds=100)

# The app setting the host reads its request body limit from, in bytes (default 100 MB).
BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"
DEFAULT_BODY_LIMIT = 100 * 1024 * 1024

_EXPRESSION = re.compile(r"%([^%]+)%")


class ConfigError(ValueError):
    """host.json, local.settings.json or an app setting is unusable."""


def apply_local_settings(app_dir: Path, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Copy local.settings.json `Values` into `environ`; the real environment wins.

    Returns the settings that were added, so a caller can take them away again.
    """
    path = app_dir / "local.settings.json"
    if not path.is_file():
        return {}
    document = _read_json(path)
    values = document.get("Values") or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: 'Values' must be an object")
    added: dict[str, str] = {}
    for name, value in values.items():
        if name in environ:
            continue
        # func start accepts numbers and booleans here and passes them on as text.
        text = value if isinstance(value, str) else json.dumps(value)
        environ[name] = text
        added[name] = text
    return added


def local_value(app_dir: Path, name: str) -> str | None:
    """One `Values` entry of local.settings.json, as text; None when it is not there."""
    return apply_local_settings(app_dir, {}).get(name)


def local_http_port(app_dir: Path) -> int | None:
    """`Host.LocalHttpPort` from local.settings.json, which func start uses as its port."""
    port = _local_host_section(app_dir).get("localhttpport")
    return int(port) if port is not None else None


@dataclass(frozen=True)
class CorsSettings:
    """`Host.CORS` and `Host.CORSCredentials`: what func start's CORS middleware allows."""

    origins: frozenset[str]  # lower-cased, as ASP.NET normalises them
    any_origin: bool
    credentials: bool


def local_cors(app_dir: Path) -> CorsSettings | None:
    """CORS as func start configures it from local.settings.json; None when `Host.CORS` is unset.

    `*` means any origin only on its own (as in ASP.NET's policy, where it is otherwise
    a literal that no origin matches), so a mix is refused rather than silently narrowed.
    `*` with credentials is refused too: func start's `CorsPolicyBuilder.Build()` throws
    on that combination while the host starts, and the portal forbids it.
    """
    section = _local_host_section(app_dir)
    text = section.get("cors")
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ConfigError("local.settings.json Host.CORS must be a comma-separated string")
    origins = frozenset(o.strip().lower() for o in text.split(",") if o.strip())
    if not origins:
        return None
    credentials = _flag(section.get("corscredentials", False), "Host.CORSCredentials")
    any_origin = "*" in origins
    if any_origin and len(origins) > 1:
        raise ConfigError("local.settings.json Host.CORS: '*' must be the only origin listed")
    if any_origin and credentials:
        raise ConfigError(
            "local.settings.json Host.CORS '*' cannot be combined with Host.CORSCredentials "
            "true (func start refuses to start with it too): list the origins instead"
        )
    return CorsSettings(origins=origins, any_origin=any_origin, credentials=credentials)


def _flag(value: Any, name: str) -> bool:
    # func start reads these with Json.NET, which also takes "true" / "false" strings.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"local.settings.json {name} must be true or false")


def _local_host_section(app_dir: Path) -> dict[str, Any]:
    # func start binds `Host` with Json.NET, whose property names are case-insensitive.
    path = app_dir / "local.settings.json"
    if not path.is_file():
        return {}
    section = _read_json(path).get("Host") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'Host' must be an object")
    return {str(k).lower(): v for k, v in section.items()}


def request_body_limit(environ: Mapping[str, str]) -> int:
    """The largest request body HTTP functions accept, in bytes."""
    text = environ.get(BODY_LIMIT_SETTING, "").strip()
    if not text:
        return DEFAULT_BODY_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit <= 0:
        raise ConfigError(f"{BODY_LIMIT_SETTING}={text!r}: expected a positive number of bytes")
    return limit


def resolve_expression(text: str, environ: Mapping[str, str]) -> str:
    """Replace `%Setting%` binding expressions with app settings, as the host does."""

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ConfigError(f"'%{name}%' does not resolve to a value (app setting missing)")
        return environ[name]

    return _EXPRESSION.sub(setting, text)


def storage_connection(setting_name: str | None, environ: Mapping[str, str]) -> StorageConnection:
    """The storage connection a queue binding's `connection` names (default AzureWebJobsStorage).

    Resolved as the host does (shared/settings.py has the rules): `AzureWebJobsX`, then
    `X`; a connection string in the setting itself wins over identity-based
    `X__accountName` / `X__queueServiceUri` / `X__credential` / `X__clientId` settings.
    """
    name = setting_name or DEFAULT_STORAGE_SETTING
    try:
        connection = parse_storage_connection(name, environ, ("queue",))
    except StorageSettingError as exc:
        raise ConfigError(str(exc)) from None
    if connection is None:
        raise ConfigError(
            f"storage connection setting '{name}' is not set "
            "(put it in local.settings.json Values or the environment)"
        )
    return connection


def storage_connection_string(setting_name: str | None, environ: Mapping[str, str]) -> str:
    """The connection string a binding's `connection` names; ConfigError when it is
    identity-based or missing."""
    connection = storage_connection(setting_name, environ)
    if connection.connection_string is None:
        raise ConfigError(f"storage connection '{connection.name}' is identity-based")
    return connection.connection_string


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` in host.json, with the host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: timedelta = timedelta(minutes=1)
    visibility_timeout: timedelta = timedelta(0)
    max_dequeue_count: int = 5
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json this host honours."""

    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: timedelta | None = None


def load_host_config(app_dir: Path) -> HostConfig:
    """Read host.json (keys are case-insensitive, as in the real host); defaults if absent."""
    path = app_dir / "host.json"
    document = _lower_keys(_read_json(path)) if path.is_file() else {}
    extensions = document.get("extensions") or {}
    http = extensions.get("http") or {}
    route_prefix = str(http.get("routeprefix", "api")).strip("/")
    return HostConfig(
        route_prefix=route_prefix,
        queues=_queue_options(extensions.get("queues") or {}),
        function_timeout=_function_timeout(document.get("functiontimeout")),
    )


def _queue_options(section: dict[str, Any]) -> QueueOptions:
    batch_size = int(section.get("batchsize", 16))
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ConfigError(f"host.json queues.batchSize must be 1-{MAX_BATCH_SIZE}")
    threshold = int(section.get("newbatchthreshold", -1))
    if threshold < 0:
        threshold = batch_size // 2
    max_polling = _timespan(section, "maxpollinginterval", timedelta(minutes=1))
    if max_polling < MIN_POLLING_INTERVAL:
        raise ConfigError("host.json queues.maxPollingInterval must be at least 00:00:00.100")
    max_dequeue = int(section.get("maxdequeuecount", 5))
    if max_dequeue < 1:
        raise ConfigError("host.json queues.maxDequeueCount must be at least 1")
    encoding = str(section.get("messageencoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise ConfigError("host.json queues.messageEncoding must be 'base64' or 'none'")
    return QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=threshold,
        max_polling_interval=max_polling,
        visibility_timeout=_timespan(section, "visibilitytimeout", timedelta(0)),
        max_dequeue_count=max_dequeue,
        message_encoding=encoding,
    )


def _function_timeout(value: Any) -> timedelta | None:
    if value is None or str(value).strip() == "-1":
        return None
    try:
        return parse_timespan(str(value))
    except ValueError as exc:
        raise ConfigError(f"host.json functionTimeout: {exc}") from exc


def _timespan(section: dict[str, Any], key: str, default: timedelta) -> timedelta:
    if key not in section:
        return default
    try:
        span = parse_timespan(str(section[key]))
    except ValueError as exc:
        raise ConfigError(f"host.json queues.{key}: {exc}") from exc
    if span < timedelta(0):
        raise ConfigError(f"host.json queues.{key} must not be negative")
    return span


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    return value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return document
