"""`python -m devhost` with FUNCTIONS_WORKER_PROCESS_COUNT > 1: a supervisor of
worker processes on one port (devhost/workers.py)."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devhost.easyauth import COOKIE
from devhost.settings import ConfigError
from devhost.workers import WORKERS_SETTING, worker_count
from tests.devhost.conftest import BLOCKING_APP, HTTP_APP, NO_KEYS, CliHost, wait_until

USER_ID = "8a7c9e0e-2b52-4d8c-9f4e-0f4f0d3c2b1a"


@pytest.fixture
def cli_hosts() -> Iterator[list[CliHost]]:
    started: list[CliHost] = []
    yield started
    for host in started:
        host.close()


def start(cli_hosts: list[CliHost], app: Path, *args: str, **settings: str) -> CliHost:
    host = CliHost(app, *args, environ={**NO_KEYS, WORKERS_SETTING: "2", **settings})
    cli_hosts.append(host)
    host.wait_for("Host started", timeout=60)
    return host


def worker_pids(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children]


def fresh_get(url: str, **headers: str) -> httpx.Response:
    """One request on a connection of its own: the kernel picks a worker per connection."""
    return httpx.get(url, headers=headers, timeout=10)


def served_by(output: str, function: str) -> set[str]:
    return set(re.findall(rf"\[worker (\d)\].*Executed 'Functions\.{function}'", output))


def test_requests_spread_over_the_workers_and_a_sign_in_holds_on_every_one(
    cli_hosts: list[CliHost],
) -> None:
    host = start(cli_hosts, HTTP_APP, "--no-queues", "--no-timers")
    assert "(2 worker processes on port" in host.output
    assert host.output.count("Functions:") == 1  # listed once, by worker 0
    form = {"user_id": USER_ID, "name": "Ada", "roles": ["Teacher"]}
    signed_in = httpx.post(f"http://127.0.0.1:{host.port}/.auth/login/dev", data=form)
    cookie = signed_in.cookies[COOKIE]
    for _ in range(30):
        seen = fresh_get(host.url("whoami"), Cookie=f"{COOKIE}={cookie}")
        assert seen.status_code == 200
        assert seen.json()["x-ms-client-principal-id"] == USER_ID
    wait_until(lambda: served_by(host.output, "whoami") == {"0", "1"}, timeout=10, what="both")
    host.process.send_signal(signal.SIGTERM)
    assert host.wait_exit(timeout=20) == 0, host.output


def test_a_worker_that_dies_is_started_again(cli_hosts: list[CliHost]) -> None:
    host = start(cli_hosts, HTTP_APP, "--no-queues", "--no-timers")
    first, second = worker_pids(host.process.pid)
    os.kill(second, signal.SIGKILL)
    host.wait_for("worker 1 exited (code -9); starting it again")
    host.wait_for("worker 1 started again", timeout=60)
    assert len(worker_pids(host.process.pid)) == 2
    assert first in worker_pids(host.process.pid)
    assert all(fresh_get(host.url("echo/x")).status_code == 200 for _ in range(10))
    host.process.send_signal(signal.SIGTERM)
    assert host.wait_exit(timeout=20) == 0, host.output


def test_timers_run_in_worker_0_only(cli_hosts: list[CliHost]) -> None:
    host = start(
        cli_hosts,
        BLOCKING_APP,
        "--no-queues",
        DH_BLOCK_SCHEDULE="* * * * * *",
        DH_TIMER_SECONDS="0",
        DH_QUEUE_BLOCK="unused",
    )
    wait_until(lambda: host.output.count("blocking timer") >= 3, timeout=15, what="3 runs")
    runs = re.findall(r"\[worker (\d)\] blocking timer", host.output)
    assert set(runs) == {"0"}, host.output


def test_worker_count_is_1_to_10(tmp_path: Path) -> None:
    assert worker_count(tmp_path, {}) == 1
    assert worker_count(tmp_path, {WORKERS_SETTING: "4"}) == 4
    settings = {"Values": {WORKERS_SETTING: "3"}}
    (tmp_path / "local.settings.json").write_text(json.dumps(settings))
    assert worker_count(tmp_path, {}) == 3
    assert worker_count(tmp_path, {WORKERS_SETTING: "2"}) == 2  # the environment wins
    for bad in ("0", "11", "two"):
        with pytest.raises(ConfigError, match=WORKERS_SETTING):
            worker_count(tmp_path, {WORKERS_SETTING: bad})


def test_a_bad_count_stops_the_cli_with_a_message(cli_hosts: list[CliHost]) -> None:
    host = CliHost(HTTP_APP, environ={**NO_KEYS, WORKERS_SETTING: "11"})
    cli_hosts.append(host)
    assert host.wait_exit(timeout=20) == 1
    assert f"{WORKERS_SETTING} must be between 1 and 10, not 11" in host.output
