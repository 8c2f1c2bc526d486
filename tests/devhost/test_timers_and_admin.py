"""Timer triggers and the admin API, on the queue sample app."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devhost import DevHost
from tests.devhost.conftest import HTTP_APP, QUEUE_APP, Queues, wait_until

Environ = Callable[..., dict[str, str]]
MASTER_KEY, FUNCTION_KEY = "master-key-for-tests", "function-key-for-tests"


def records(host: DevHost, function: str) -> list[dict[str, Any]]:
    with host.app_module.LOCK:
        return list(host.app_module.RECORDS[function])


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def test_run_on_startup_runs_once(queue_app_environ: Environ) -> None:
    with DevHost(QUEUE_APP, port=0, environ=queue_app_environ(), queues=False) as host:
        host.wait_idle(timeout=10)
        ticks = records(host, "tick")
        assert len(ticks) == 1
        assert ticks[0]["past_due"] is False
        assert records(host, "failing_tick") == []  # no run_on_startup there


@pytest.mark.parametrize("schedule", ["* * * * * *", "00:00:01"])
def test_timer_fires_on_its_schedule(queue_app_environ: Environ, schedule: str) -> None:
    environ = queue_app_environ(DH_TICK_SCHEDULE=schedule)
    with DevHost(QUEUE_APP, port=0, environ=environ, queues=False) as host:
        wait_until(lambda: len(records(host, "tick")) >= 3, timeout=10, what="three ticks")
        ticks = records(host, "tick")
    scheduled = ticks[1:3]
    gap = scheduled[1]["wall"] - scheduled[0]["wall"]
    assert 0.8 <= gap <= 2.2, gap  # one second apart (two if the machine is very busy)
    if schedule.startswith("*"):  # NCRONTAB occurrences fall on whole seconds
        assert all(t["wall"] % 1 < 0.5 for t in scheduled), scheduled


def test_failing_timer_is_logged_and_scheduled_again(
    queue_app_environ: Environ, caplog: pytest.LogCaptureFixture
) -> None:
    environ = queue_app_environ(DH_FAILING_SCHEDULE="* * * * * *")
    with DevHost(QUEUE_APP, port=0, environ=environ, queues=False) as host:
        wait_until(lambda: len(records(host, "failing_tick")) >= 2, timeout=10, what="2 runs")
    failures = [r for r in caplog.records if "Functions.failing_tick' (Failed" in r.getMessage()]
    assert len(failures) >= 2
    assert all(r.exc_info for r in failures)


@pytest.fixture
def keyed_queue_host(queue_app_environ: Environ) -> Iterator[DevHost]:
    environ = queue_app_environ(LOCAL_MASTER_KEY=MASTER_KEY, LOCAL_FUNCTION_KEY=FUNCTION_KEY)
    with DevHost(QUEUE_APP, port=0, environ=environ) as host:
        host.wait_idle(timeout=10)  # the startup tick
        yield host


def admin(host: DevHost, client: httpx.Client, name: str, **kwargs: Any) -> httpx.Response:
    return client.post(f"{host.base_url}/admin/functions/{name}", **kwargs)


def test_admin_endpoint_runs_a_queue_function(
    keyed_queue_host: DevHost, client: httpx.Client, queues: Queues, queue_names: dict[str, str]
) -> None:
    host = keyed_queue_host
    body = {"input": "from the admin API"}
    assert admin(host, client, "work", json=body).status_code == 401
    assert admin(host, client, "work", json=body, params={"code": FUNCTION_KEY}).status_code == 401
    response = admin(host, client, "WORK", json=body, headers={"x-functions-key": MASTER_KEY})
    assert response.status_code == 202
    host.wait_idle(timeout=10)
    (run,) = records(host, "work")
    assert run["body"] == b"from the admin API"
    assert run["dequeue_count"] == 1
    assert queues.count(queue_names["work"]) == 0  # nothing went through the queue


def test_admin_endpoint_runs_a_timer_function(
    keyed_queue_host: DevHost, client: httpx.Client
) -> None:
    host = keyed_queue_host
    response = admin(host, client, "tick", params={"code": MASTER_KEY}, content=b"")
    assert response.status_code == 202
    host.wait_idle(timeout=10)
    assert len(records(host, "tick")) == 2  # startup + on demand


def test_admin_run_that_fails_is_logged_not_retried(
    keyed_queue_host: DevHost,
    client: httpx.Client,
    queues: Queues,
    queue_names: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = keyed_queue_host
    body = {"input": "fail on demand"}
    assert admin(host, client, "work", json=body, params={"code": MASTER_KEY}).status_code == 202
    host.wait_idle(timeout=10)
    assert len(records(host, "work")) == 1
    assert "Functions.work' (Failed" in caplog.text
    assert queues.peek(f"{queue_names['work']}-poison") == []


def test_admin_endpoint_errors(keyed_queue_host: DevHost, client: httpx.Client) -> None:
    host = keyed_queue_host
    key = {"code": MASTER_KEY}
    assert admin(host, client, "no_such_function", json={}, params=key).status_code == 404
    assert admin(host, client, "work", content=b"{not json", params=key).status_code == 400
    status = client.get(f"{host.base_url}/admin/host/status", params=key)
    assert status.status_code == 200
    assert status.json()["state"] == "Running"
    assert client.get(f"{host.base_url}/admin/host/status").status_code == 401
    assert client.get(f"{host.base_url}/admin/nothing", params=key).status_code == 404


def test_admin_endpoint_refuses_http_functions_and_is_open_without_keys(
    client: httpx.Client,
) -> None:
    environ = {"LOCAL_FUNCTION_KEY": "", "LOCAL_MASTER_KEY": ""}
    with DevHost(HTTP_APP, port=0, environ=environ, queues=False, timers=False) as host:
        response = admin(host, client, "echo", json={"input": "x"})
        assert response.status_code == 400
        assert "route" in json.loads(response.text)["error"]
        assert client.get(f"{host.base_url}/admin/host/status").json()["state"] == "Running"
