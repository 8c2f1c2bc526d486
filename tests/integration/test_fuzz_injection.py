"""Injection and limits through the session host, against the real stores:
hostile ids never reach a store (UUID validation), hostile strings inside
valid events are stored verbatim as data (parameters, not SQL; Redis fields,
not keys), and the payload limits hold."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from devhost import DevHost
from shared import limits
from shared.repositories.archive import ArchiveRepository
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import MASTER_KEY, rows

ADMIN = {"x-functions-key": MASTER_KEY}
HOSTILE = [
    "1' OR '1'='1",
    "x; DROP TABLE event_ledger; --",
    "progress:*",
    "a:b",
    "a#b",
    "a?b",
    "a\\b",
    "%00",
    "0" * 5000,
]
ROUTES = [
    ("GET", "v1/students/{}/progress"),
    ("GET", "v1/users/{}/notifications"),
    ("GET", "v1/quizzes/{}/leaderboard"),
    ("GET", "v1/live/sessions/{}"),
    ("DELETE", "v1/users/{}"),
    ("GET", "v1/users/{}/export"),
    ("GET", "v1/users/{}/disclosures"),
    ("GET", "v1/reports/students/{}"),
]


@pytest.mark.parametrize(("method", "route"), ROUTES)
@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_ids_are_refused_with_a_400(
    host: DevHost, method: str, route: str, hostile: str
) -> None:
    url = host.url(route.format(quote(hostile, safe="")))
    response = httpx.request(method, url, headers=ADMIN, timeout=30)
    assert response.status_code == 400, response.text
    assert "must be a UUID" in response.json()["error"]


def test_hostile_strings_inside_events_are_stored_verbatim(
    host: DevHost, client: httpx.Client, test_run: TestRun, archive: ArchiveRepository
) -> None:
    nasty = ["'; DROP TABLE lesson_progress; --", "a:b:*", "p|q", "#/\\?", '"}{"']
    progress = f.lesson_progress(sections_read=nasty)
    attempt = f.quiz_attempt(answers={"q'1; --": "x:y", "a|b": ["*", "'"]})
    post = f.forum_activity(content="Robert'); DROP TABLE forum_activity;--")
    response = client.post("v1/events", json={"events": [progress, attempt, post]})
    assert response.json()["accepted"] == 3
    host.wait_idle(timeout=60)

    view = client.get(f"v1/students/{progress['student_id']}/progress").json()
    assert view["lessons"][0]["sections_read"] == sorted(nasty)
    stored = rows(
        test_run.postgres_dsn,
        "SELECT answers FROM quiz_attempts WHERE attempt_id = %s",
        attempt["attempt_id"],
    )
    assert stored == [(attempt["answers"],)]
    (record,) = archive.read_user(post["user_id"])
    assert record["event"]["content"] == post["content"]


def test_payload_limits_hold(client: httpx.Client) -> None:
    too_many = {"events": [f.lesson_progress() for _ in range(limits.MAX_EVENTS_PER_REQUEST + 1)]}
    response = client.post("v1/events", json=too_many)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]

    too_big = json.dumps({"events": [f.forum_activity(content="x" * 30_000)] * 40})
    assert len(too_big) > limits.MAX_REQUEST_BYTES
    response = client.post(
        "v1/events", content=too_big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413

    response = client.post("v1/events", content=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415

    deep = "[" * 100_000 + "]" * 100_000
    response = client.post("v1/events", content=deep, headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_query_parameters_are_bounded(client: httpx.Client, host: DevHost) -> None:
    someone = f.new_id()
    for limit in ("0", "101", "-1", "1e3", "' OR 1=1", "9" * 50):
        response = client.get(f"v1/users/{someone}/notifications", params={"limit": limit})
        assert response.status_code == 400, limit
        assert "limit" in response.json()["error"]
    response = httpx.get(
        host.url(f"v1/users/{someone}/disclosures"),
        params={"cursor": "1; DELETE FROM access_log"},
        headers=ADMIN,
        timeout=30,
    )
    assert response.status_code == 400
