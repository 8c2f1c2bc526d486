"""CORS as func start answers it: Host.CORS / Host.CORSCredentials from local.settings.json."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost import DevHost
from devhost.settings import ConfigError, CorsSettings, local_cors
from tests.devhost.conftest import HTTP_APP

FUNCTION_KEY = "function-key-for-cors-tests"
ALLOWED, OTHER_ALLOWED, STRANGER = (
    "http://localhost:3000",
    "https://app.example",
    "https://evil.example",
)
# Spaces and capitals as someone might type them: func start lower-cases configured origins.
ORIGINS = f"{ALLOWED}, HTTPS://App.Example"


def write_settings(app_dir: Path, host_section: dict[str, Any]) -> None:
    document = {"IsEncrypted": False, "Values": {}, "Host": host_section}
    (app_dir / "local.settings.json").write_text(json.dumps(document), encoding="utf-8")


@contextmanager
def cors_host(
    tmp_path_factory: pytest.TempPathFactory, host_section: dict[str, Any], **keys: str
) -> Iterator[DevHost]:
    app_dir = tmp_path_factory.mktemp("cors") / "app"
    shutil.copytree(HTTP_APP, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    write_settings(app_dir, host_section)
    environ = {"LOCAL_FUNCTION_KEY": keys.get("function_key", ""), "LOCAL_MASTER_KEY": ""}
    with DevHost(app_dir, port=0, environ=environ, queues=False, timers=False) as running:
        yield running


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    """Two origins, no credentials, function keys enforced."""
    with cors_host(tmp_path_factory, {"CORS": ORIGINS}, function_key=FUNCTION_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def credentialed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    with cors_host(tmp_path_factory, {"CORS": ALLOWED, "CORSCredentials": True}) as running:
        yield running


@pytest.fixture(scope="module")
def any_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    with cors_host(tmp_path_factory, {"CORS": "*"}) as running:
        yield running


@pytest.fixture(scope="module")
def unconfigured(keyless_http_host: DevHost) -> DevHost:
    return keyless_http_host


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def preflight(
    client: httpx.Client, url: str, origin: str, method: str = "PUT", headers: str = ""
) -> httpx.Response:
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    return client.options(url, headers=request_headers)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def varies_by_origin(response: httpx.Response) -> bool:
    values = ",".join(response.headers.get_list("vary")).lower()
    return "origin" in [v.strip() for v in values.split(",")]


# -- preflight --------------------------------------------------------------------


@pytest.mark.parametrize(
    "route",
    [
        "api/items/5",  # anonymous, every method: it would answer 200 itself
        "api/keys/admin",  # admin level: 401 without the master key
        "api/keys/function",  # function level, key enforced: 401 without it
        "api/nothing/here",  # no such route: 404
        "admin/host/status",  # the host's own API
    ],
)
def test_preflight_is_answered_by_the_host(
    listed: DevHost, client: httpx.Client, route: str
) -> None:
    url = f"{listed.base_url}/{route}"
    response = preflight(client, url, ALLOWED, "PUT", "content-type, x-functions-key")
    assert response.status_code == 204
    assert response.content == b""
    assert cors_headers(response) == {
        "access-control-allow-origin": ALLOWED,
        "access-control-allow-methods": "PUT",
        "access-control-allow-headers": "content-type, x-functions-key",
        "access-control-max-age": "600",
    }
    assert varies_by_origin(response)


def test_preflight_without_requested_headers(listed: DevHost, client: httpx.Client) -> None:
    response = preflight(client, listed.url("echo/x"), OTHER_ALLOWED, "DELETE")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == OTHER_ALLOWED
    assert response.headers["access-control-allow-methods"] == "DELETE"
    assert "access-control-allow-headers" not in response.headers


def test_preflight_from_a_disallowed_origin(listed: DevHost, client: httpx.Client) -> None:
    response = preflight(client, listed.url("items/5"), STRANGER, "PUT", "content-type")
    assert response.status_code == 204  # answered, without a grant: the browser blocks
    assert response.content == b""
    assert cors_headers(response) == {}
    assert not varies_by_origin(response)


def test_plain_options_is_routed(listed: DevHost, client: httpx.Client) -> None:
    # not a preflight: the function answers, with the CORS headers added
    response = client.options(listed.url("items/5"), headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.json()["method"] == "OPTIONS"
    assert response.headers["access-control-allow-origin"] == ALLOWED


# -- actual requests --------------------------------------------------------------


def test_response_to_an_allowed_origin(listed: DevHost, client: httpx.Client) -> None:
    response = client.get(listed.url("echo/x"), headers={"Origin": OTHER_ALLOWED})
    assert response.status_code == 200
    assert response.json()["headers"]["origin"] == OTHER_ALLOWED  # the function ran
    assert response.headers["x-sample"] == "yes"  # its own headers are kept
    assert cors_headers(response) == {
        "access-control-allow-origin": OTHER_ALLOWED,
        "access-control-expose-headers": "Retry-After, ETag",
    }
    assert varies_by_origin(response)


def test_errors_carry_cors_headers_too(listed: DevHost, client: httpx.Client) -> None:
    # a browser client can only read why its call failed if the error is granted too
    for url, status in ((listed.url("keys/function"), 401), (listed.url("nothing"), 404)):
        response = client.get(url, headers={"Origin": ALLOWED})
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == ALLOWED


def test_response_to_a_disallowed_origin(listed: DevHost, client: httpx.Client) -> None:
    response = client.get(listed.url("echo/x"), headers={"Origin": STRANGER})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert not varies_by_origin(response)


def test_same_origin_requests_get_no_cors_headers(listed: DevHost, client: httpx.Client) -> None:
    response = client.get(listed.url("echo/x"))
    assert response.status_code == 200
    assert cors_headers(response) == {}


def test_credentials(credentialed: DevHost, client: httpx.Client) -> None:
    grant = preflight(client, credentialed.url("echo/x"), ALLOWED, "POST", "content-type")
    assert grant.headers["access-control-allow-origin"] == ALLOWED
    assert grant.headers["access-control-allow-credentials"] == "true"
    response = client.post(credentialed.url("echo/x"), headers={"Origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED  # never "*"
    assert response.headers["access-control-allow-credentials"] == "true"
    # /.auth/me too, so a single-page app can ask who is signed in
    me = client.get(f"{credentialed.base_url}/.auth/me", headers={"Origin": ALLOWED})
    assert me.status_code == 401
    assert me.headers["access-control-allow-credentials"] == "true"
    stranger = client.post(credentialed.url("echo/x"), headers={"Origin": STRANGER})
    assert cors_headers(stranger) == {}


def test_any_origin(any_origin: DevHost, client: httpx.Client) -> None:
    grant = preflight(client, any_origin.url("echo/x"), STRANGER, "PATCH", "x-anything")
    assert grant.status_code == 204
    assert grant.headers["access-control-allow-origin"] == "*"
    assert grant.headers["access-control-allow-methods"] == "PATCH"
    assert grant.headers["access-control-allow-headers"] == "x-anything"
    assert "access-control-allow-credentials" not in grant.headers
    response = client.get(any_origin.url("echo/x"), headers={"Origin": STRANGER})
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-expose-headers"] == "Retry-After, ETag"
    assert "access-control-allow-credentials" not in response.headers


def test_without_host_cors_nothing_is_added(unconfigured: DevHost, client: httpx.Client) -> None:
    response = client.get(unconfigured.url("echo/x"), headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    # no CORS middleware, as under func start: the OPTIONS request reaches the function
    options = preflight(client, unconfigured.url("items/5"), ALLOWED)
    assert options.status_code == 200
    assert options.json()["method"] == "OPTIONS"
    assert cors_headers(options) == {}


def test_any_origin_with_credentials_is_refused_at_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with (
        pytest.raises(ConfigError, match=r"cannot be combined with Host\.CORSCredentials"),
        cors_host(tmp_path_factory, {"CORS": "*", "CORSCredentials": True}),
    ):
        pass


# -- reading the settings ---------------------------------------------------------


def test_cors_settings_are_read_like_func_start(tmp_path: Path) -> None:
    assert local_cors(tmp_path) is None  # no local.settings.json
    write_settings(tmp_path, {"LocalHttpPort": 7072})
    assert local_cors(tmp_path) is None
    write_settings(tmp_path, {"CORS": ""})
    assert local_cors(tmp_path) is None
    write_settings(tmp_path, {"CORS": ORIGINS})
    assert local_cors(tmp_path) == CorsSettings(
        origins=frozenset({ALLOWED, OTHER_ALLOWED}), any_origin=False, credentials=False
    )
    # Json.NET binds the names case-insensitively and takes "true" as a string too
    write_settings(tmp_path, {"cors": "*", "corsCredentials": "false"})
    assert local_cors(tmp_path) == CorsSettings(
        origins=frozenset({"*"}), any_origin=True, credentials=False
    )
    write_settings(tmp_path, {"CORS": ALLOWED, "CORSCredentials": "True"})
    settings = local_cors(tmp_path)
    assert settings is not None
    assert settings.credentials


@pytest.mark.parametrize(
    ("host_section", "message"),
    [
        ({"CORS": "*", "CORSCredentials": True}, "cannot be combined"),
        ({"CORS": f"*,{ALLOWED}"}, "'\\*' must be the only origin"),
        ({"CORS": ALLOWED, "CORSCredentials": "yes"}, "CORSCredentials must be true or false"),
        ({"CORS": ["http://a.example"]}, "comma-separated string"),
    ],
)
def test_unusable_cors_settings(tmp_path: Path, host_section: dict[str, Any], message: str) -> None:
    write_settings(tmp_path, host_section)
    with pytest.raises(ConfigError, match=message):
        local_cors(tmp_path)
