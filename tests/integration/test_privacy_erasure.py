"""Erasure (SPEC 9) through the real app on the local host, against the real
stores: a user in every role, with more of their events still on the queues
when the erasure runs; afterwards no table, archive entity or Redis key holds
their id, and the in-flight events do not bring anything back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from azure.data.tables import TableServiceClient
from psycopg import sql

from devhost import DevHost
from shared.repositories.realtime import RealtimeRepository
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import (
    FUNCTION_KEY,
    MASTER_KEY,
    fast_app_dir,
    host_environ,
    rows,
    running_host,
)

INVERT_HEX = str.maketrans("0123456789abcdef", "fedcba9876543210")


def like(**over: Any) -> dict[str, Any]:
    event = f.forum_activity(action_type="like", **over)
    event.pop("content")
    return event


def post_events(host: DevHost, events: list[dict[str, Any]]) -> httpx.Response:
    response = httpx.post(
        host.url("v1/events"),
        json={"events": events},
        headers={"x-functions-key": FUNCTION_KEY},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response


def erase(host: DevHost, user: str) -> httpx.Response:
    return httpx.delete(
        host.url(f"v1/users/{user}"), headers={"x-functions-key": MASTER_KEY}, timeout=60
    )


# --- searching every store for a string --------------------------------------------------


def postgres_hits(dsn: str, needle: str) -> dict[str, list[str]]:
    """Every row of every table whose text form contains ``needle``, by table."""
    hits: dict[str, list[str]] = {}
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            found = conn.execute(
                sql.SQL("SELECT t::text FROM {} AS t WHERE t::text LIKE %s").format(
                    sql.Identifier(table)
                ),
                (f"%{needle}%",),
            ).fetchall()
            if found:
                hits[table] = [row[0] for row in found]
    return hits


def archive_hits(run: TestRun, needle: str) -> list[str]:
    """Every entity of every archive table mentioning ``needle``."""
    service = TableServiceClient.from_connection_string(run.storage_connection)
    found = []
    for table in service.list_tables():
        if not table.name.startswith(run.archive_table_prefix):
            continue
        for entity in service.get_table_client(table.name).list_entities():
            text = json.dumps(dict(entity), default=str) + entity["PartitionKey"]
            if needle in text:
                found.append(f"{table.name}: {text[:200]}")
    return found


def redis_hits(run: TestRun, *needles: str) -> list[str]:
    """Every key under the session prefix whose name or value mentions a needle."""
    client = redis.Redis.from_url(run.redis_url, decode_responses=True)
    found = []
    try:
        for key in client.scan_iter(match=f"{run.redis_prefix}*", count=1000):
            kind = client.type(key)
            value: Any
            if kind == "string":
                value = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(client.smembers(key))
            else:
                value = None
            text = key + json.dumps(value)
            if any(needle in text for needle in needles):
                found.append(f"{key}: {text[:200]}")
    finally:
        client.close()
    return found


# --- the test -------------------------------------------------------------------------------


def test_erasure_leaves_no_trace_even_with_events_still_on_the_queues(
    test_run: TestRun, scratch_dir: Path, redis_views: RealtimeRepository
) -> None:
    user, other, teacher = f.new_id(), f.new_id(), f.new_id()
    quiz, thread, session, lesson = f.new_id(), f.new_id(), f.new_id(), f.new_id()
    their_post, others_post = f.new_id(), f.new_id()
    # Queues of this test only: the session host must not drain them.
    environ = host_environ(
        test_run,
        PERSIST_QUEUE=f"t{test_run.run_id}-pv-persist",
        ARCHIVE_QUEUE=f"t{test_run.run_id}-pv-archive",
        REALTIME_QUEUE=f"t{test_run.run_id}-pv-realtime",
    )
    app_dir = fast_app_dir(scratch_dir)

    # Given the user in every role, stored everywhere ...
    settled = [
        f.lesson_progress(student_id=user, lesson_id=lesson),
        f.quiz_attempt(student_id=user, quiz_id=quiz, score=9.0),
        f.quiz_attempt(student_id=other, quiz_id=quiz, score=5.0),
        f.forum_activity(user_id=user, post_id=their_post, thread_id=thread),
        f.forum_activity(
            user_id=other,
            post_id=f.new_id(),
            thread_id=thread,
            action_type="reply",
            parent_post_id=their_post,
            content="I agree",
        ),
        like(user_id=other, post_id=their_post, thread_id=thread),
        f.forum_activity(user_id=other, post_id=others_post, thread_id=thread),
        like(user_id=user, post_id=others_post, thread_id=thread),
        f.feedback(teacher_id=teacher, student_id=user),
        f.feedback(teacher_id=user, student_id=other),
        f.content_activity(teacher_id=user),
        f.live_class_engagement(teacher_id=user, session_id=session),
        f.live_class_engagement(teacher_id=teacher, session_id=session),
    ]
    with running_host(app_dir, environ) as host:
        post_events(host, settled)
        host.wait_idle(timeout=60)
        reads = {"x-functions-key": FUNCTION_KEY}
        progress = httpx.get(host.url(f"v1/students/{user}/progress"), headers=reads)
        assert progress.json()["lessons"], progress.text
        notifications = httpx.get(host.url(f"v1/users/{user}/notifications"), headers=reads)
        assert len(notifications.json()["notifications"]) == 2
        # The other user was notified of the user's like.
        theirs = httpx.get(host.url(f"v1/users/{other}/notifications"), headers=reads).json()
        assert [n["actor_id"] for n in theirs["notifications"]] == [user]
    assert (
        rows(
            test_run.postgres_dsn,
            "SELECT count(*) FROM event_ledger WHERE %s = ANY(user_ids)",
            uuid.UUID(user),
        )[0][0]
        == 8
    )

    # ... and more of their events on the queues, applied to Redis at ingest but
    # not yet persisted or archived, when the erasure runs.
    in_flight = [
        f.lesson_progress(student_id=user, lesson_id=f.new_id()),
        f.quiz_attempt(student_id=user, quiz_id=quiz, score=10.0),
        f.forum_activity(user_id=user, post_id=f.new_id(), thread_id=thread),
        f.feedback(teacher_id=teacher, student_id=user),
        f.live_class_engagement(teacher_id=user, session_id=session, duration_seconds=3400),
    ]
    with running_host(app_dir, environ, queues=False) as host:
        post_events(host, in_flight)
        assert redis_hits(test_run, user), "ingest should have applied the events to Redis"

        erased = erase(host, user)
        assert erased.status_code == 200, erased.text
        body = erased.json()
        assert body["user_id"] == user
        assert body["erased"]["postgres"] > 8
        assert body["erased"]["archive"] > 8
        assert body["erased"]["realtime"] > 0

        # Events sent after the erasure are dropped (answered as accepted).
        late = post_events(host, [f.lesson_progress(student_id=user)]).json()
        assert late["accepted"] == 1

        again = erase(host, user)
        assert again.status_code == 200
        assert again.json()["erased"] == {"postgres": 0, "archive": 0, "realtime": 0}
        assert again.json()["erased_at"] == body["erased_at"]

    # When the queues drain, the tombstone drops every in-flight event.
    with running_host(app_dir, environ) as host:
        host.wait_idle(timeout=60)

    # Then nothing anywhere names the user, except the tombstone and the record
    # that the erasure happened.
    hits = postgres_hits(test_run.postgres_dsn, user)
    assert set(hits) <= {"erased_users", "access_log"}, hits
    assert len(hits["erased_users"]) == 1
    assert all(",erase," in row for row in hits["access_log"]), hits["access_log"]
    assert archive_hits(test_run, user) == []
    assert redis_hits(test_run, user, user.translate(INVERT_HEX)) == []

    # Other users' own data stays: their attempt, their post, their reply and like.
    standings = redis_views.client.hgetall(redis_views.key("lbs", quiz))
    assert {field.split("|")[0] for field in standings} == {other}
    assert (
        rows(
            test_run.postgres_dsn,
            "SELECT count(*) FROM forum_activity WHERE user_id = %s",
            uuid.UUID(other),
        )[0][0]
        == 3
    )
    assert (
        rows(
            test_run.postgres_dsn,
            "SELECT count(*) FROM live_class_engagement WHERE session_id = %s",
            uuid.UUID(session),
        )[0][0]
        == 1
    )
