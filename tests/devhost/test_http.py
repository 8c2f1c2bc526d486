"""HTTP functions served by DevHost: routing, conversions, errors, keys."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from devhost import DevHost
from tests.devhost.conftest import HTTP_APP

GUID = "8a7c9e0e-2b52-4d8c-9f4e-0f4f0d3c2b1a"
FUNCTION_KEY, MASTER_KEY = "function-key-for-tests", "master-key-for-tests"
NO_KEYS = {"LOCAL_FUNCTION_KEY": "", "LOCAL_MASTER_KEY": ""}


@pytest.fixture(scope="module")
def host(keyless_http_host: DevHost) -> DevHost:
    return keyless_http_host


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def keyed_host() -> Iterator[DevHost]:
    keys = {"LOCAL_FUNCTION_KEY": FUNCTION_KEY, "LOCAL_MASTER_KEY": MASTER_KEY}
    with DevHost(HTTP_APP, port=0, environ=keys, queues=False, timers=False) as running:
        yield running


def test_every_function_is_indexed(host: DevHost) -> None:
    names = {fn.name for fn in host.functions}
    assert {"echo", "user_by_id", "Renamed", "async_echo", "boom"} <= names
    assert host.errors == {}
    assert f"echo: [GET,POST] http://localhost:{host.port}/api/echo/{{name}}" in host.describe()


def test_request_conversion(host: DevHost, client: httpx.Client) -> None:
    response = client.post(
        host.url("echo/ann") + "?a=1&b=two&a=3",
        content=b'{"hello": "world"}',
        headers={"X-Custom": "value", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["url"] == host.url("echo/ann") + "?a=1&b=two&a=3"
    assert seen["route_params"] == {"name": "ann"}
    assert seen["params"] == {"a": "1,3", "b": "two"}
    assert seen["headers"]["x-custom"] == "value"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["body"] == '{"hello": "world"}'


def test_response_conversion(host: DevHost, client: httpx.Client) -> None:
    response = client.get(host.url("echo/bob"), params={"status": "418"})
    assert response.status_code == 418
    assert response.headers["x-sample"] == "yes"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["route_params"] == {"name": "bob"}


def test_text_mimetypes_get_a_charset(host: DevHost, client: httpx.Client) -> None:
    response = client.get(host.url("default_route"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == "served at the function name"


def test_route_defaults_to_the_function_name(host: DevHost, client: httpx.Client) -> None:
    response = client.get(host.url("Renamed"))
    assert (response.status_code, response.text) == (200, "plain string")
    assert response.headers["content-type"].startswith("text/plain")
    # the Python name is not a route: only the function name is
    assert client.get(host.url("renamed_function")).status_code == 404


def test_route_constraints_and_optional_segments(host: DevHost, client: httpx.Client) -> None:
    assert client.get(host.url(f"users/{GUID}")).json()["route_params"] == {"user_id": GUID}
    assert client.get(host.url("users/not-a-guid")).status_code == 404
    assert client.get(host.url("users/me")).text == "me"  # the literal beats the parameter
    assert client.get(host.url("items/5")).json()["route_params"] == {"item_id": "5"}
    red = client.get(host.url("items/5/red")).json()["route_params"]
    assert red == {"item_id": "5", "tag": "red"}
    assert client.get(host.url("items/five")).status_code == 404
    path = client.get(host.url("files/a/b%20c/d.txt")).json()["route_params"]
    assert path == {"path": "a/b c/d.txt"}


def test_unknown_route_is_404_and_wrong_method_is_405(host: DevHost, client: httpx.Client) -> None:
    missing = client.get(host.url("nothing/here"))
    # Empty, as the real host answers its own 404 and 401 (only 413 carries {"error": ...}).
    assert (missing.status_code, missing.content) == (404, b"")
    assert client.get(f"{host.base_url}/echo/ann").status_code == 404  # no route prefix
    wrong = client.put(host.url("echo/ann"))
    assert (wrong.status_code, wrong.content) == (405, b"")
    assert wrong.headers["allow"] == "GET, POST"


def test_async_functions_are_awaited(host: DevHost, client: httpx.Client) -> None:
    response = client.post(host.url("async/hi"))
    assert (response.status_code, response.text) == (201, "hi")


def test_unhandled_exception_is_a_500_with_the_traceback_logged(
    host: DevHost, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.get(host.url("boom"))
    assert response.status_code == 500
    assert "failed on purpose" not in response.text  # no details leak to the caller
    failures = [r for r in caplog.records if "Functions.boom' (Failed" in r.getMessage()]
    assert failures
    assert failures[0].exc_info is not None
    assert "failed on purpose" in str(failures[0].exc_info[1])


def test_context_parameter(host: DevHost, client: httpx.Client) -> None:
    name, invocation_id = client.get(host.url("with-context")).text.split()
    assert name == "with_context"
    assert len(invocation_id) == 36


def test_without_keys_every_level_is_open(host: DevHost, client: httpx.Client) -> None:
    for level in ("anonymous", "function", "admin"):
        assert client.get(host.url(f"keys/{level}")).status_code == 200


@pytest.mark.parametrize(
    ("level", "key", "status"),
    [
        ("anonymous", None, 200),
        ("anonymous", "wrong", 200),
        ("function", None, 401),
        ("function", "wrong", 401),
        ("function", FUNCTION_KEY, 200),
        ("function", MASTER_KEY, 200),
        ("admin", None, 401),
        ("admin", FUNCTION_KEY, 401),
        ("admin", MASTER_KEY, 200),
    ],
)
@pytest.mark.parametrize("where", ["header", "query"])
def test_auth_levels_with_keys(
    keyed_host: DevHost,
    client: httpx.Client,
    level: str,
    key: str | None,
    status: int,
    where: str,
) -> None:
    url = keyed_host.url(f"keys/{level}")
    if key is None:
        response = client.get(url)
    elif where == "header":
        response = client.get(url, headers={"x-functions-key": key})
    else:
        response = client.get(url, params={"code": key})
    assert response.status_code == status


def test_app_default_auth_level_applies_to_routes_without_one(
    keyed_host: DevHost, client: httpx.Client
) -> None:
    # user_by_id sets no auth level: the FunctionApp's FUNCTION level applies
    url = keyed_host.url(f"users/{GUID}")
    refused = client.get(url)
    assert (refused.status_code, refused.content) == (401, b"")
    assert client.get(url, params={"code": FUNCTION_KEY}).status_code == 200


def test_local_settings_and_environment(
    copy_app: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, client: httpx.Client
) -> None:
    app_dir = copy_app(
        HTTP_APP,
        {
            "local.settings.json": {
                "IsEncrypted": False,
                "Values": {"DH_FROM_FILE": "file value", "DH_BOTH": "file loses"},
            }
        },
    )
    monkeypatch.setenv("DH_BOTH", "environment wins")
    with DevHost(app_dir, port=0, environ=NO_KEYS, queues=False, timers=False) as running:
        assert client.get(running.url("setting/DH_FROM_FILE")).text == "file value"
        assert client.get(running.url("setting/DH_BOTH")).text == "environment wins"
    # what the host added is gone again; what was there before stays
    assert "DH_FROM_FILE" not in os.environ
    assert os.environ["DH_BOTH"] == "environment wins"


def test_route_prefix_and_function_timeout(
    copy_app: Callable[..., Path], client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    host_json = {
        "version": "2.0",
        "functionTimeout": "00:00:00.500",
        "extensions": {"http": {"routePrefix": "v2/edge"}},
    }
    app_dir = copy_app(HTTP_APP, {"host.json": host_json})
    with DevHost(app_dir, port=0, environ=NO_KEYS, queues=False, timers=False) as running:
        assert running.url("users/me") == f"{running.base_url}/v2/edge/users/me"
        assert client.get(f"{running.base_url}/v2/edge/users/me").text == "me"
        assert client.get(f"{running.base_url}/api/users/me").status_code == 404
        assert client.get(running.url("sleep/0.1")).text == "woke up"
        assert client.get(running.url("sleep/1.5")).status_code == 500
    assert "Timeout value of 00:00:00.5000000 exceeded" in caplog.text


def test_empty_route_prefix(copy_app: Callable[..., Path], client: httpx.Client) -> None:
    app_dir = copy_app(HTTP_APP, {"host.json": {"extensions": {"http": {"routePrefix": ""}}}})
    with DevHost(app_dir, port=0, environ=NO_KEYS, queues=False, timers=False) as running:
        assert client.get(f"{running.base_url}/users/me").text == "me"


def test_serves_many_requests_quickly(host: DevHost) -> None:
    """A loose guard: the ingest benchmark needs hundreds of 100-event POSTs per second."""
    events = [{"event_id": str(i), "payload": "x" * 150} for i in range(100)]
    body = json.dumps(events).encode()
    url = host.url("echo/bench")

    def post_many(count: int) -> None:
        with httpx.Client(timeout=10) as http:
            for _ in range(count):
                assert http.post(url, content=body).status_code == 200

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post_many, [100] * 4))
    rate = 400 / (time.perf_counter() - started)
    assert rate > 100, f"only {rate:.0f} requests/s"
