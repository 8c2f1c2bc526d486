"""The tombstone's Redis mirror: lost with a flush, reloaded from PostgreSQL
before anything is applied again; each sink drops erased users on its own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from devhost import DevHost
from shared.models.events import event_adapter
from shared.repositories.archive import ArchiveRepository
from shared.repositories.postgres import PostgresRepository
from shared.repositories.realtime import RealtimeRepository
from shared.services.archive_sink import archive_live_events
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import MASTER_KEY


def erase(host: DevHost, user: str) -> None:
    response = httpx.delete(
        host.url(f"v1/users/{user}"), headers={"x-functions-key": MASTER_KEY}, timeout=60
    )
    assert response.status_code == 200, response.text


def test_a_lost_mirror_is_reloaded_from_postgres_before_anything_is_applied(
    host: DevHost, test_run: TestRun, postgres: PostgresRepository
) -> None:
    student = f.new_id()
    erase(host, student)
    views = RealtimeRepository(
        test_run.redis_url, test_run.redis_prefix, tombstones=postgres.erased_user_ids
    )
    try:
        views.client.delete(views.key("erased"), views.key("erased", "loaded"))  # a flush
        event = event_adapter.validate_python(f.lesson_progress(student_id=student))
        assert views.apply_events([event], datetime.now(UTC)) == 0
        assert views.client.exists(views.key("progress", student)) == 0
        assert views.erased_among([uuid.UUID(student)]) == {uuid.UUID(student)}
    finally:
        views.close()


def test_ingest_asks_postgres_when_the_mirror_is_missing(
    host: DevHost, client: httpx.Client, test_run: TestRun, redis_views: RealtimeRepository
) -> None:
    student = f.new_id()
    erase(host, student)
    redis_views.client.delete(redis_views.key("erased"), redis_views.key("erased", "loaded"))
    response = client.post("v1/events", json=f.lesson_progress(student_id=student))
    assert response.status_code == 202
    assert response.json()["accepted"] == 1  # dropped, answered as accepted
    host.wait_idle(timeout=60)
    assert redis_views.client.exists(redis_views.key("progress", student)) == 0


def test_the_archive_sink_drops_erased_users_and_keeps_the_rest(
    host: DevHost,
    archive: ArchiveRepository,
    redis_views: RealtimeRepository,
    postgres: PostgresRepository,
) -> None:
    erased, kept = f.new_id(), f.new_id()
    erase(host, erased)
    events = [
        event_adapter.validate_python(f.feedback(teacher_id=kept, student_id=erased)),
        event_adapter.validate_python(f.lesson_progress(student_id=kept)),
    ]
    written = archive_live_events(events, datetime.now(UTC), archive, redis_views, postgres)
    assert written == 1
    assert list(archive.read_user(erased)) == []
    assert [r["type"] for r in archive.read_user(kept)] == ["lesson_progress"]
