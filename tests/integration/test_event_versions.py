"""One version of each event (SPEC 13): the same event_id sent again with other
content. Ingest refuses it when Redis remembers the first; every sink keeps
the first version it stored and records the conflict."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from devhost import DevHost
from shared.models.events import event_adapter
from shared.repositories.archive import ArchiveRepository
from shared.repositories.realtime import RealtimeRepository
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import rows


def test_ingest_refuses_a_second_version_and_takes_the_same_content_again(
    host: DevHost, client: httpx.Client, test_run: TestRun
) -> None:
    quiz = f.new_id()
    first = f.quiz_attempt(quiz_id=quiz, score=4.0)
    second = first | {"score": 10.0}
    other = f.quiz_attempt(quiz_id=quiz, score=5.0)
    assert client.post("v1/events", json=first).status_code == 202

    answer = client.post("v1/events", json={"events": [second, other]})
    assert answer.status_code == 202
    body = answer.json()
    assert body["event_ids"] == [other["event_id"]]
    (rejected,) = body["rejected"]
    assert rejected["index"] == 0
    assert rejected["errors"][0]["field"] == "event_id"
    assert "first version is kept" in rejected["errors"][0]["message"]
    # The same content again is a client's retry: accepted, changes nothing.
    assert client.post("v1/events", json=first).json()["accepted"] == 1

    host.wait_idle(timeout=60)
    scores = rows(test_run.postgres_dsn, "SELECT score FROM quiz_attempts WHERE quiz_id = %s", quiz)
    assert sorted(score for (score,) in scores) == [4.0, 5.0]
    board = client.get(f"v1/quizzes/{quiz}/leaderboard").json()["entries"]
    assert [entry["best_score"] for entry in board] == [5.0, 4.0]


def test_a_sink_that_meets_a_second_version_keeps_the_first_and_records_it(
    host: DevHost,
    client: httpx.Client,
    test_run: TestRun,
    redis_views: RealtimeRepository,
    archive: ArchiveRepository,
) -> None:
    first = f.feedback(score=6.0)
    second = first | {"score": 9.0, "feedback_text": "Changed my mind."}
    assert client.post("v1/events", json=first).status_code == 202
    host.wait_idle(timeout=60)
    # Past the real-time dedupe window (7 days) ingest can no longer tell.
    redis_views.client.delete(redis_views.key("seen", first["event_id"]))
    assert client.post("v1/events", json=second).status_code == 202
    host.wait_idle(timeout=60)

    stored = rows(
        test_run.postgres_dsn,
        "SELECT score, feedback_text FROM feedback WHERE event_id = %s",
        first["event_id"],
    )
    assert stored == [(6.0, first["feedback_text"])]
    (record,) = [r for r in archive.read_user(first["teacher_id"]) if r["role"] == "actor"]
    assert record["event"]["score"] == 6.0
    conflicts = rows(
        test_run.postgres_dsn,
        "SELECT sink, first_digest, other_digest FROM event_conflicts WHERE event_id = %s "
        "ORDER BY sink",
        first["event_id"],
    )
    digests = (event_adapter.validate_python(first).content_digest,)
    digests += (event_adapter.validate_python(second).content_digest,)
    assert conflicts == [("archive", *digests), ("postgres", *digests)]


def test_redis_keeps_the_first_version_and_counts_the_second(test_run: TestRun) -> None:
    views = RealtimeRepository(test_run.redis_url, f"{test_run.redis_prefix}versions:")
    views.load_tombstones([])
    quiz = f.new_id()
    first = event_adapter.validate_python(f.quiz_attempt(quiz_id=quiz, score=3.0))
    second = event_adapter.validate_python(
        f.quiz_attempt(quiz_id=quiz, score=8.0) | {"event_id": str(first.event_id)}
    )
    now = datetime.now(UTC)
    assert views.apply_events([first], now) == 1
    assert views.apply_events([second], now) == 0
    assert views.apply_events([first], now) == 0  # a plain redelivery is no conflict
    assert views.conflicts() == {"realtime": 1}
    assert views.first_versions([uuid.UUID(str(first.event_id))]) == {
        first.event_id: first.content_digest
    }
    views.load_leaderboard(quiz, [])
    (entry,) = views.leaderboard(quiz, 10) or []
    assert entry["best_score"] == 3.0
    for key in views.client.scan_iter(match=f"{views.prefix}*"):
        views.client.delete(key)
    views.close()
