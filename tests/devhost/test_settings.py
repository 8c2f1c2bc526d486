"""host.json, local.settings.json, binding expressions, connection settings, keys."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from devhost.auth import ADMIN, ANONYMOUS, FUNCTION, Keys, normalise_auth_level, presented_key
from devhost.settings import (
    ConfigError,
    QueueOptions,
    apply_local_settings,
    load_host_config,
    local_http_port,
    resolve_expression,
    storage_connection_string,
)
from devhost.timespan import format_timespan, parse_timespan


def write(directory: Path, name: str, document: object) -> Path:
    (directory / name).write_text(json.dumps(document), encoding="utf-8")
    return directory


def test_host_json_defaults(tmp_path: Path) -> None:
    config = load_host_config(tmp_path)  # no host.json at all
    assert config.route_prefix == "api"
    assert config.queues == QueueOptions(
        batch_size=16,
        new_batch_threshold=8,
        max_polling_interval=timedelta(minutes=1),
        visibility_timeout=timedelta(0),
        max_dequeue_count=5,
        message_encoding="base64",
    )
    assert config.function_timeout is None


def test_host_json_settings_are_read_case_insensitively(tmp_path: Path) -> None:
    write(
        tmp_path,
        "host.json",
        {
            "version": "2.0",
            "functionTimeout": "00:10:00",
            "extensions": {
                "http": {"routePrefix": ""},
                "Queues": {
                    "BatchSize": 8,
                    "maxPollingInterval": "00:00:02.500",
                    "visibilityTimeout": "00:00:30",
                    "maxDequeueCount": 2,
                    "messageEncoding": "None",
                },
            },
        },
    )
    config = load_host_config(tmp_path)
    assert config.route_prefix == ""
    assert config.function_timeout == timedelta(minutes=10)
    assert config.queues == QueueOptions(
        batch_size=8,
        new_batch_threshold=4,  # batchSize / 2 when not given
        max_polling_interval=timedelta(seconds=2.5),
        visibility_timeout=timedelta(seconds=30),
        max_dequeue_count=2,
        message_encoding="none",
    )


@pytest.mark.parametrize(
    "queues",
    [
        {"batchSize": 0},
        {"batchSize": 33},
        {"maxDequeueCount": 0},
        {"maxPollingInterval": "00:00:00.050"},
        {"visibilityTimeout": "-00:00:01"},
        {"visibilityTimeout": "ten seconds"},
        {"messageEncoding": "utf-16"},
    ],
)
def test_invalid_queue_settings_are_refused(tmp_path: Path, queues: dict[str, object]) -> None:
    write(tmp_path, "host.json", {"extensions": {"queues": queues}})
    with pytest.raises(ConfigError):
        load_host_config(tmp_path)


def test_unbounded_function_timeout(tmp_path: Path) -> None:
    write(tmp_path, "host.json", {"functionTimeout": "-1"})
    assert load_host_config(tmp_path).function_timeout is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:01:00", timedelta(minutes=1)),
        ("00:00:00.100", timedelta(milliseconds=100)),
        ("1.02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("02:30", timedelta(hours=2, minutes=30)),
        ("7", timedelta(days=7)),
        ("-00:00:05", timedelta(seconds=-5)),
    ],
)
def test_timespans(text: str, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


def test_timespans_are_written_like_dotnet() -> None:
    assert format_timespan(timedelta(minutes=5)) == "00:05:00"
    assert format_timespan(timedelta(seconds=1.25)) == "00:00:01.2500000"
    assert format_timespan(timedelta(days=1, hours=1)) == "25:00:00"


@pytest.mark.parametrize("text", ["", "1:2:3:4", "00:61:00", "24:00:00", "5m"])
def test_bad_timespans(text: str) -> None:
    with pytest.raises(ValueError, match="TimeSpan"):
        parse_timespan(text)


def test_local_settings_fill_in_but_the_environment_wins(tmp_path: Path) -> None:
    write(
        tmp_path,
        "local.settings.json",
        {
            "IsEncrypted": False,
            "Values": {"FROM_FILE": "file", "BOTH": "file", "NUMBER": 3},
            "Host": {"LocalHttpPort": 7123},
        },
    )
    environ = {"BOTH": "environment"}
    added = apply_local_settings(tmp_path, environ)
    assert environ == {"BOTH": "environment", "FROM_FILE": "file", "NUMBER": "3"}
    assert added == {"FROM_FILE": "file", "NUMBER": "3"}
    assert local_http_port(tmp_path) == 7123


def test_no_local_settings_means_nothing_added(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert apply_local_settings(tmp_path, environ) == {}
    assert environ == {}
    assert local_http_port(tmp_path) is None


def test_binding_expressions() -> None:
    environ = {"QUEUE": "orders", "ENV": "dev"}
    assert resolve_expression("%QUEUE%-%ENV%", environ) == "orders-dev"
    assert resolve_expression("plain", environ) == "plain"
    with pytest.raises(ConfigError, match="MISSING"):
        resolve_expression("%MISSING%", environ)


def test_connection_settings() -> None:
    environ = {"AzureWebJobsStorage": "default", "AzureWebJobsArchive": "prefixed", "Own": "own"}
    assert storage_connection_string(None, environ) == "default"
    assert storage_connection_string("", environ) == "default"
    assert storage_connection_string("Own", environ) == "own"
    assert storage_connection_string("Archive", environ) == "prefixed"
    with pytest.raises(ConfigError, match="Nowhere"):
        storage_connection_string("Nowhere", environ)


def test_without_keys_nothing_is_enforced() -> None:
    keys = Keys.from_environ({"LOCAL_FUNCTION_KEY": "", "OTHER": "x"})
    assert not keys.enforced
    assert keys.allows(ADMIN, None)


@pytest.mark.parametrize(
    ("level", "presented", "allowed"),
    [
        (ANONYMOUS, None, True),
        (ANONYMOUS, "wrong", True),
        (FUNCTION, None, False),
        (FUNCTION, "wrong", False),
        (FUNCTION, "fkey", True),
        (FUNCTION, "mkey", True),
        (ADMIN, "fkey", False),
        (ADMIN, "mkey", True),
        (ADMIN, None, False),
    ],
)
def test_auth_levels(level: str, presented: str | None, allowed: bool) -> None:
    keys = Keys.from_environ({"LOCAL_FUNCTION_KEY": "fkey", "LOCAL_MASTER_KEY": "mkey"})
    assert keys.allows(level, presented) is allowed


def test_only_a_function_key_configured_makes_admin_unreachable() -> None:
    keys = Keys(function_key="fkey")
    assert keys.allows(FUNCTION, "fkey")
    assert not keys.allows(ADMIN, "fkey")


def test_key_from_header_before_query() -> None:
    assert presented_key({"x-functions-key": "h"}, {"code": "q"}) == "h"
    assert presented_key({}, {"code": "q"}) == "q"
    assert presented_key({}, {}) is None


def test_auth_level_spellings() -> None:
    import azure.functions as func

    assert normalise_auth_level(func.AuthLevel.ADMIN) == ADMIN
    assert normalise_auth_level("FUNCTION") == FUNCTION
    assert normalise_auth_level("anonymous") == ANONYMOUS
    with pytest.raises(ValueError, match="auth level"):
        normalise_auth_level("system")
