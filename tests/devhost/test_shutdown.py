"""Bounded shutdown: no new work at once, a grace period for work in flight, then exit anyway.

The blocking sample app holds work in flight (HTTP requests, a queue message, a timer
run) for a minute unless released; every stop here must end long before that, whether
the host runs in-process (DevHost.stop) or as `python -m devhost` getting a signal,
with its storage up, killed or frozen.
"""

from __future__ import annotations

import secrets
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from azure.storage.queue import QueueClient

from devhost import DevHost
from devhost.__main__ import parse_args
from devhost.shutdown import CLOSE_MARGIN, DEFAULT_GRACE, GRACE_SETTING
from tests.devhost.conftest import (
    BLOCKING_APP,
    NEVER,
    NO_KEYS,
    CliHost,
    Queues,
    port_open,
    wait_until,
)
from tests.integration.services import DEV_ACCOUNT, DEV_KEY, PrivateAzurite

# How long past the grace period a subprocess may take to be gone (it needs ~0.5 s).
EXIT_MARGIN = 3.0
Environ = Callable[..., dict[str, str]]


@pytest.fixture
def queue_name(queue_prefix: str) -> str:
    return f"{queue_prefix}-{secrets.token_hex(3)}-block"


@pytest.fixture
def environ(storage: str, queue_name: str) -> Environ:
    """App settings for the blocking app; keyword arguments override them."""

    def settings(**overrides: str) -> dict[str, str]:
        base = {
            "AzureWebJobsStorage": storage,
            "DH_QUEUE_BLOCK": queue_name,
            "DH_BLOCK_SCHEDULE": NEVER,
            **NO_KEYS,
        }
        return {**base, **overrides}

    return settings


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """For requests that are in flight while the host stops."""
    with ThreadPoolExecutor(4) as executor:
        yield executor


def get(pool: ThreadPoolExecutor, url: str) -> Future[httpx.Response]:
    return pool.submit(httpx.get, url, timeout=90)


def started(app: Any, *kinds: str) -> Callable[[], bool]:
    return lambda: all(app.STARTED[kind] >= 1 for kind in kinds)


# -- DevHost.stop, in-process -------------------------------------------------------------


def test_stop_abandons_what_outlasts_the_grace_period(
    environ: Environ, queues: Queues, queue_name: str, pool: ThreadPoolExecutor
) -> None:
    host = DevHost(BLOCKING_APP, port=0, environ=environ(DH_BLOCK_SCHEDULE="* * * * * *"))
    host.start()
    app = host.app_module
    try:
        blocked = get(pool, host.url("block/60"))
        sleeping = get(pool, host.url("async-block/60"))
        queues.send(queue_name, "60")
        wait_until(started(app, "http", "async", "queue", "timer"), timeout=15, what="all four")
        began = time.monotonic()
        report = host.stop(timeout=1)
        took = time.monotonic() - began
    finally:
        app.RELEASE.set()  # the threads the host had to leave behind end now
        host.stop()
    assert 1 <= took < 1 + CLOSE_MARGIN, took
    assert not report.drained
    abandoned = "\n".join(report.abandoned)
    assert "HTTP GET /api/block/60, running for" in abandoned
    assert "HTTP GET /api/async-block/60, running for" in abandoned
    assert "timer run of Functions.block_timer" in abandoned
    assert f"queue '{queue_name}': message " in abandoned
    assert "not deleted, so the queue delivers it again once its lease ends (by " in abandoned
    # The coroutine was cancelled; the three synchronous functions' threads run on.
    assert sorted(t.rsplit(".", 1)[1] for t in report.threads) == [
        "block_http",
        "block_queue",
        "block_timer",
    ]
    assert queues.count(queue_name) == 1  # left for the queue to deliver again
    for abandoned_request in (blocked, sleeping):
        assert isinstance(abandoned_request.exception(timeout=10), httpx.TransportError)


def test_stop_refuses_new_work_at_once_and_lets_work_in_flight_finish(
    environ: Environ, queues: Queues, queue_name: str, pool: ThreadPoolExecutor
) -> None:
    host = DevHost(BLOCKING_APP, port=0, environ=environ()).start()
    app, port = host.app_module, host.port
    try:
        in_flight = get(pool, host.url("block/1.5"))
        wait_until(started(app, "http"), what="the request to start")
        stopping = pool.submit(host.stop, 10)
        wait_until(lambda: not port_open(port), timeout=1, what="the listener to close")
        queues.send(queue_name, "0")  # polling has stopped: nobody takes it
        assert not in_flight.done()
        report = stopping.result(timeout=15)
        response = in_flight.result(timeout=5)
    finally:
        app.RELEASE.set()
        host.stop()
    assert (response.status_code, response.text) == (200, "done")
    assert report.drained, report
    assert app.STARTED["queue"] == 0
    assert queues.count(queue_name) == 1


def test_stop_returns_when_a_coroutine_blocks_the_event_loop(
    environ: Environ, pool: ThreadPoolExecutor
) -> None:
    host = DevHost(BLOCKING_APP, port=0, environ=environ()).start()
    app = host.app_module
    try:
        get(pool, host.url("block-loop/30"))
        wait_until(started(app, "loop"), what="the loop to block")
        began = time.monotonic()
        report = host.stop(timeout=0.5)
        took = time.monotonic() - began
    finally:
        app.RELEASE.set()
    assert took < 0.5 + CLOSE_MARGIN + 0.5, took
    assert any("event loop did not stop" in item for item in report.abandoned), report


# -- python -m devhost and signals --------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "grace"),
    [(signal.SIGTERM, ["--shutdown-grace", "2"]), (signal.SIGINT, [])],
    ids=["SIGTERM, --shutdown-grace", "SIGINT, DEVHOST_SHUTDOWN_GRACE"],
)
def test_cli_exits_after_the_grace_period_whatever_is_blocked(
    environ: Environ,
    queues: Queues,
    queue_name: str,
    pool: ThreadPoolExecutor,
    cli_hosts: list[CliHost],
    signum: signal.Signals,
    grace: list[str],
) -> None:
    host = CliHost(BLOCKING_APP, *grace, environ=environ(**{GRACE_SETTING: "2"}))
    cli_hosts.append(host)
    host.wait_for("Host started")
    blocked = get(pool, host.url("block/60"))
    queues.send(queue_name, "60")
    host.wait_for("blocking http")
    host.wait_for("blocking queue")
    sent = time.monotonic()
    host.process.send_signal(signum)
    wait_until(lambda: not port_open(host.port), timeout=1, what="the listener to close")
    code = host.wait_exit(timeout=2 + 10)
    took = time.monotonic() - sent
    output = host.output
    assert 2 <= took < 2 + EXIT_MARGIN, (took, output)
    assert code == 1, output
    assert "work in flight gets 2s" in output
    assert "Shutdown: abandoned HTTP GET /api/block/60" in output
    assert "not deleted, so the queue delivers it again" in output
    assert "exiting without 2 function thread(s)" in output
    assert isinstance(blocked.exception(timeout=10), httpx.TransportError)
    assert queues.count(queue_name) == 1


def test_cli_drains_work_in_flight_and_exits_0(
    environ: Environ, pool: ThreadPoolExecutor, cli_hosts: list[CliHost]
) -> None:
    host = CliHost(BLOCKING_APP, environ=environ())
    cli_hosts.append(host)
    host.wait_for("Host started")
    in_flight = get(pool, host.url("block/1"))
    host.wait_for("blocking http")
    sent = time.monotonic()
    host.process.send_signal(signal.SIGTERM)
    code = host.wait_exit(timeout=DEFAULT_GRACE + 10)
    took = time.monotonic() - sent
    assert code == 0, host.output
    assert took < 1 + EXIT_MARGIN, took
    assert in_flight.result(timeout=5).text == "done"
    assert "Shutdown: all work in flight finished." in host.output


def test_cli_second_signal_ends_it_at_once(
    environ: Environ, pool: ThreadPoolExecutor, cli_hosts: list[CliHost]
) -> None:
    host = CliHost(BLOCKING_APP, "--shutdown-grace", "60", environ=environ())
    cli_hosts.append(host)
    host.wait_for("Host started")
    get(pool, host.url("block/60"))
    host.wait_for("blocking http")
    host.process.send_signal(signal.SIGTERM)
    host.wait_for("Shutting down")
    sent = time.monotonic()
    host.process.send_signal(signal.SIGTERM)
    code = host.wait_exit(timeout=5)
    assert time.monotonic() - sent < 1.5
    assert code == -signal.SIGTERM


@pytest.mark.parametrize("outage", ["killed", "frozen"])
def test_cli_exits_in_time_when_its_storage_is_gone(
    private_azurite: PrivateAzurite,
    environ: Environ,
    pool: ThreadPoolExecutor,
    cli_hosts: list[CliHost],
    outage: str,
) -> None:
    settings = environ(AzureWebJobsStorage=private_azurite.connection, DH_QUEUE_BLOCK="blocked")
    host = CliHost(BLOCKING_APP, "--shutdown-grace", "2", environ=settings)
    cli_hosts.append(host)
    host.wait_for("Host started", timeout=30)
    queue = QueueClient.from_connection_string(private_azurite.connection, "blocked")
    queue.send_message("60")
    queue.send_message("0.5")  # its delete meets the outage
    get(pool, host.url("block/60"))
    host.wait_for("blocking queue")
    host.wait_for("blocking http")
    if outage == "killed":
        private_azurite.kill()
    else:  # connections open, nothing answers: each call would wait for its timeout
        private_azurite.freeze()
    time.sleep(1)  # the poller is now failing (or hanging on) its receives
    sent = time.monotonic()
    host.process.send_signal(signal.SIGTERM)
    code = host.wait_exit(timeout=2 + 10)
    took = time.monotonic() - sent
    assert took < 2 + EXIT_MARGIN, (took, host.output)
    assert code == 1, host.output
    assert "Shutdown: abandoned queue 'blocked': message" in host.output


def test_a_delete_that_meets_a_storage_outage_is_retried_once_storage_is_back(
    private_azurite: PrivateAzurite, environ: Environ
) -> None:
    """Without the retry the message would stay invisible for its 10-minute lease, then rerun."""
    settings = environ(AzureWebJobsStorage=private_azurite.connection, DH_QUEUE_BLOCK="blocked")
    queue = QueueClient.from_connection_string(private_azurite.connection, "blocked")
    with DevHost(BLOCKING_APP, port=0, environ=settings, timers=False) as host:
        app = host.app_module
        queue.send_message("60")
        wait_until(started(app, "queue"), timeout=15, what="the queue function")
        private_azurite.stop()
        app.RELEASE.set()  # the function ends while storage is down: its delete fails
        time.sleep(10)  # longer than the SDK's own retries (retry_total=2) last
        private_azurite.start()
        host.wait_idle(timeout=60)
        assert queue.get_queue_properties().approximate_message_count == 0
        assert app.STARTED["queue"] == 1  # completed, not delivered again


def test_cli_signal_during_start_up_ends_it_at_once(
    environ: Environ, cli_hosts: list[CliHost]
) -> None:
    # A storage endpoint that accepts connections and never answers: start-up hangs on it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/{DEV_ACCOUNT}"
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"QueueEndpoint={endpoint};"
        )
        host = CliHost(BLOCKING_APP, environ=environ(AzureWebJobsStorage=connection))
        cli_hosts.append(host)
        silent.settimeout(30)
        caller, _ = silent.accept()  # the host waits on its queue now, and will for long
        with caller:
            time.sleep(0.5)
            assert host.process.poll() is None, host.output
            sent = time.monotonic()
            host.process.send_signal(signal.SIGTERM)
            code = host.wait_exit(timeout=5)
    assert time.monotonic() - sent < 1.5
    assert code == 1
    assert "SIGTERM during start-up" in host.output


def test_shutdown_grace_from_the_flag_the_environment_or_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(GRACE_SETTING, raising=False)
    assert parse_args([]).shutdown_grace == DEFAULT_GRACE
    monkeypatch.setenv(GRACE_SETTING, "2.5")
    assert parse_args([]).shutdown_grace == 2.5
    assert parse_args(["--shutdown-grace", "0"]).shutdown_grace == 0
    with pytest.raises(SystemExit):
        parse_args(["--shutdown-grace", "-1"])
    monkeypatch.setenv(GRACE_SETTING, "soon")
    with pytest.raises(SystemExit):
        parse_args([])
