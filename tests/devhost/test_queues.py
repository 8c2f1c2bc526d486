"""Queue triggers end to end on Azurite: processing, encodings, retries, poison, batches."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import devhost.queues
from devhost import DevHost
from tests.devhost.conftest import QUEUE_APP, Queues, b64, wait_until

# sample_app_queues/host.json: batchSize 4, newBatchThreshold 0, visibilityTimeout 1 s,
# maxDequeueCount 3, maxPollingInterval 0.5 s, base64.
Environ = Callable[..., dict[str, str]]


def records(host: DevHost, function: str) -> list[dict[str, Any]]:
    with host.app_module.LOCK:
        return list(host.app_module.RECORDS[function])


def start(app_dir: Path, environ: dict[str, str]) -> DevHost:
    return DevHost(app_dir, port=0, environ=environ, timers=False).start()


def test_messages_are_processed_and_deleted(
    queue_app_environ: Environ, queue_names: dict[str, str], queues: Queues
) -> None:
    work = queue_names["work"]
    with start(QUEUE_APP, queue_app_environ()) as host:
        queues.send(work, b64("hello"))
        queues.send(work, b64(b"\x00\xffbinary"))
        host.wait_idle(timeout=20)
        seen = records(host, "work")
        assert sorted(r["body"] for r in seen) == [b"\x00\xffbinary", b"hello"]
        assert all(r["dequeue_count"] == 1 for r in seen)
        assert all(r["id"] and r["pop_receipt"] and r["insertion_time"] for r in seen)
        assert queues.count(work) == 0


def test_failing_message_is_retried_then_moved_to_poison(
    queue_app_environ: Environ, queue_names: dict[str, str], queues: Queues
) -> None:
    work = queue_names["work"]
    original = b64("fail: always")
    with start(QUEUE_APP, queue_app_environ()) as host:
        queues.send(work, original)
        queues.send(work, b64("fine"))
        host.wait_idle(timeout=30)
        failing = [r for r in records(host, "work") if r["body"] == b"fail: always"]
        assert [r["dequeue_count"] for r in failing] == [1, 2, 3]  # maxDequeueCount 3
        # each retry waited for visibilityTimeout (1 s) before the message reappeared
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(failing)]
        assert all(gap >= 0.9 for gap in gaps), gaps
        assert [r["body"] for r in records(host, "work")].count(b"fine") == 1
        assert queues.count(work) == 0
        assert queues.peek(f"{work}-poison") == [original]


def test_message_dequeued_too_often_goes_to_poison_without_running(
    queue_app_environ: Environ, queue_names: dict[str, str], queues: Queues
) -> None:
    """A message whose dequeue count already exceeds the maximum (a crash mid-run)."""
    work = queue_names["work"]
    client = queues.client(work)
    client.create_queue()
    client.send_message(b64("crashed three times"))
    for _ in range(3):  # each receive counts as a dequeue
        (message,) = list(client.receive_messages(max_messages=1, visibility_timeout=30))
        client.update_message(message, visibility_timeout=0)
    with start(QUEUE_APP, queue_app_environ()) as host:
        host.wait_idle(timeout=20)
        assert records(host, "work") == []
        assert queues.peek(f"{work}-poison") == [b64("crashed three times")]


def test_invalid_base64_goes_to_poison(
    queue_app_environ: Environ, queue_names: dict[str, str], queues: Queues
) -> None:
    work = queue_names["work"]
    with start(QUEUE_APP, queue_app_environ()) as host:
        queues.send(work, "this is not base64!")
        host.wait_idle(timeout=20)
        assert records(host, "work") == []
        assert queues.peek(f"{work}-poison") == ["this is not base64!"]


def test_message_encoding_none(
    copy_app: Callable[..., Path],
    queue_app_environ: Environ,
    queue_names: dict[str, str],
    queues: Queues,
) -> None:
    host_json = {
        "version": "2.0",
        "extensions": {
            "queues": {
                "messageEncoding": "none",
                "maxDequeueCount": 1,
                "maxPollingInterval": "00:00:00.500",
            }
        },
    }
    app_dir = copy_app(QUEUE_APP, {"host.json": host_json})
    work, forward = queue_names["work"], queue_names["forward"]
    with start(app_dir, queue_app_environ()) as host:
        queues.send(work, '{"plain": "text é"}')
        queues.send(work, "fail as plain text")
        queues.send(forward, "Chain")
        host.wait_idle(timeout=20)
        bodies = sorted(r["body"] for r in records(host, "work"))
        assert bodies == [b"fail as plain text", '{"plain": "text é"}'.encode()]
        assert queues.peek(f"{work}-poison") == ["fail as plain text"]
        assert sorted(r["body"] for r in records(host, "sink")) == [b"CHAIN", b"chain"]


def test_output_binding_feeds_another_function_and_wait_idle_waits_for_it(
    queue_app_environ: Environ, queue_names: dict[str, str], queues: Queues
) -> None:
    with start(QUEUE_APP, queue_app_environ()) as host:
        queues.send(queue_names["forward"], b64("MiXeD"))
        host.wait_idle(timeout=20)
        assert sorted(r["body"] for r in records(host, "sink")) == [b"MIXED", b"mixed"]
        assert queues.count(queue_names["sink"]) == 0


def test_batch_size_bounds_concurrency(
    queue_app_environ: Environ, queue_names: dict[str, str], queues: Queues
) -> None:
    slow = queue_names["slow"]
    with start(QUEUE_APP, queue_app_environ(DH_SLOW_SECONDS="0.4")) as host:
        for number in range(12):
            queues.send(slow, b64(f"m{number}"))
        host.wait_idle(timeout=30)
        assert len(records(host, "slow")) == 12
        # batchSize 4 with newBatchThreshold 0: four at a time, never more
        assert host.app_module.SLOW["most"] == 4


def test_long_running_function_keeps_its_message_leased(
    copy_app: Callable[..., Path],
    queue_app_environ: Environ,
    queue_names: dict[str, str],
    queues: Queues,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 2 s lease renewed every second; the function takes 3 s. With a threshold of 2
    # the poller keeps receiving meanwhile, so an expired lease would mean a second run.
    monkeypatch.setattr(devhost.queues, "MESSAGE_LEASE", timedelta(seconds=2))
    host_json = {
        "extensions": {"queues": {"batchSize": 4, "newBatchThreshold": 2, "maxDequeueCount": 3}}
    }
    app_dir = copy_app(QUEUE_APP, {"host.json": host_json})
    with start(app_dir, queue_app_environ(DH_SLOW_SECONDS="3")) as host:
        queues.send(queue_names["slow"], b64("takes a while"))
        host.wait_idle(timeout=30)
        assert [r["dequeue_count"] for r in records(host, "slow")] == [1]
        assert queues.count(queue_names["slow"]) == 0


def test_stop_lets_messages_in_flight_finish(
    queue_app_environ: Environ, queue_names: dict[str, str], queues: Queues
) -> None:
    slow = queue_names["slow"]
    queues.client(slow).create_queue()
    # Queued before the start, so that the first receive takes both.
    queues.send(slow, b64("one"))
    queues.send(slow, b64("two"))
    host = start(QUEUE_APP, queue_app_environ(DH_SLOW_SECONDS="0.5"))
    app = host.app_module
    try:
        wait_until(lambda: app.SLOW["running"] == 2, what="both messages running")
    finally:
        host.stop()
    assert len(app.RECORDS["slow"]) == 2
    assert queues.count(slow) == 0  # finished and deleted, not abandoned


def test_function_with_an_unresolvable_setting_is_reported_not_run(
    queue_app_environ: Environ,
) -> None:
    environ = queue_app_environ()
    environ.pop("DH_QUEUE_SLOW")
    with DevHost(QUEUE_APP, port=0, environ=environ, queues=False, timers=False) as host:
        assert "DH_QUEUE_SLOW" in host.errors["slow"]
        assert "slow" not in {fn.name for fn in host.functions}
        assert any(line.startswith("slow: NOT RUNNING") for line in host.describe())


def test_wait_idle_times_out_while_work_is_in_flight(
    queue_app_environ: Environ, queue_names: dict[str, str], queues: Queues
) -> None:
    with start(QUEUE_APP, queue_app_environ(DH_SLOW_SECONDS="1")) as host:
        queues.send(queue_names["slow"], b64("a second"))
        wait_until(lambda: host.app_module.SLOW["running"] == 1, what="the message to start")
        with pytest.raises(TimeoutError, match="in flight"):
            host.wait_idle(timeout=0.3)
        host.wait_idle(timeout=10)
        assert len(records(host, "slow")) == 1


def test_the_lease_is_10_minutes_unless_the_local_setting_shortens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(devhost.queues.LEASE_SETTING, raising=False)
    assert devhost.queues._lease_seconds() == 600
    monkeypatch.setenv(devhost.queues.LEASE_SETTING, "15")
    assert devhost.queues._lease_seconds() == 15
    monkeypatch.setenv(devhost.queues.LEASE_SETTING, "0")
    assert devhost.queues._lease_seconds() == 2  # renewed at half-time: never below 2 s
