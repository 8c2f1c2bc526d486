"""Auth levels, export and the record of disclosures, through the session host
(the real function_app.py with function and master keys configured)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from devhost import DevHost
from tests import factories as f
from tests.integration.conftest import FUNCTION_KEY, MASTER_KEY

ADMIN = {"x-functions-key": MASTER_KEY}
FUNCTION = {"x-functions-key": FUNCTION_KEY}
SOMEONE = "00000000-0000-4000-8000-000000000001"

FUNCTION_LEVEL = [
    ("POST", "v1/events"),
    ("GET", f"v1/students/{SOMEONE}/progress"),
    ("GET", f"v1/users/{SOMEONE}/notifications"),
    ("GET", f"v1/quizzes/{SOMEONE}/leaderboard"),
    ("GET", f"v1/reports/students/{SOMEONE}"),
]
ADMIN_LEVEL = [
    ("DELETE", f"v1/users/{SOMEONE}"),
    ("GET", f"v1/users/{SOMEONE}/export"),
    ("GET", f"v1/users/{SOMEONE}/disclosures"),
]


def call(host: DevHost, method: str, route: str, **kwargs: Any) -> httpx.Response:
    body = {"json": f.lesson_progress()} if method == "POST" else {}
    return httpx.request(method, host.url(route), timeout=30, **body, **kwargs)


@pytest.mark.parametrize(("method", "route"), FUNCTION_LEVEL + ADMIN_LEVEL)
@pytest.mark.parametrize(
    "key", [None, "wrong-key", FUNCTION_KEY[:-1]], ids=["missing", "wrong", "truncated"]
)
def test_a_missing_or_wrong_key_gets_401(
    host: DevHost, method: str, route: str, key: str | None
) -> None:
    headers = {} if key is None else {"x-functions-key": key}
    assert call(host, method, route, headers=headers).status_code == 401


@pytest.mark.parametrize(("method", "route"), FUNCTION_LEVEL)
def test_function_level_endpoints_accept_the_function_key_and_the_master_key(
    host: DevHost, method: str, route: str
) -> None:
    for headers in (FUNCTION, ADMIN):
        assert call(host, method, route, headers=headers).status_code in (200, 202)
    # The key may also come as the `code` query parameter.
    assert call(host, method, route, params={"code": FUNCTION_KEY}).status_code in (200, 202)


@pytest.mark.parametrize(("method", "route"), ADMIN_LEVEL)
def test_admin_endpoints_refuse_the_function_key_and_accept_the_master_key(
    host: DevHost, method: str, route: str
) -> None:
    assert call(host, method, route, headers=FUNCTION).status_code == 401
    assert call(host, method, route, headers=ADMIN).status_code == 200


@pytest.mark.parametrize("route", ["v1/health", "v1/openapi.json"])
def test_health_and_openapi_are_anonymous(host: DevHost, route: str) -> None:
    assert httpx.get(host.url(route), timeout=30).status_code == 200


def test_the_openapi_document_declares_the_auth_level_of_each_operation(
    client: httpx.Client,
) -> None:
    paths = client.get("v1/openapi.json").json()["paths"]
    assert paths["/api/v1/users/{user_id}"]["delete"]["security"] == [{"adminKey": []}]
    assert paths["/api/v1/users/{user_id}/export"]["get"]["security"] == [{"adminKey": []}]
    assert paths["/api/v1/health"]["get"]["security"] == []
    assert {"functionKey": []} in paths["/api/v1/events"]["post"]["security"]


def test_export_pages_through_every_store_and_is_recorded(
    host: DevHost, client: httpx.Client
) -> None:
    student = f.new_id()
    events = [f.lesson_progress(student_id=student) for _ in range(3)] + [
        f.quiz_attempt(student_id=student),
        f.feedback(student_id=student),
    ]
    assert client.post("v1/events", json={"events": events}).status_code == 202
    host.wait_idle(timeout=60)

    pages, cursor = [], None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = httpx.get(
            host.url(f"v1/users/{student}/export"), params=params, headers=ADMIN, timeout=30
        )
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(pages) > 3  # a heavy user is read in bounded pages
    tables: dict[str, list[Any]] = {}
    archived = []
    realtime = None
    for page in pages:
        assert sum(len(r) for r in page["postgres"].values()) + len(page["archive"]) <= 2
        for name, found in page["postgres"].items():
            tables.setdefault(name, []).extend(found)
        archived.extend(page["archive"])
        realtime = page["realtime"] or realtime
    assert len(tables["lesson_progress_events.student_id"]) == 3
    assert len(tables["lesson_progress.student_id"]) == 3
    assert len(tables["quiz_attempts.student_id"]) == 1
    assert len(tables["feedback.student_id"]) == 1
    assert len(tables["event_ledger.user_ids"]) == 5
    assert sorted(r["event_id"] for r in archived) == sorted(e["event_id"] for e in events)
    assert {r["role"] for r in archived} == {"actor", "student_id"}
    assert realtime is not None
    assert len(realtime["progress"]) == 3  # three lessons, in the API's progress shape
    assert {"lesson_id", "progress_percent", "sections_read"} <= set(realtime["progress"][0])
    assert [s["attempts"] for s in realtime["leaderboards"]] == [1]

    # Every page is a disclosure, recorded with who (a key fingerprint, never the key).
    log = httpx.get(host.url(f"v1/users/{student}/disclosures"), headers=ADMIN, timeout=30).json()
    exports = [d for d in log["disclosures"] if d["action"] == "export"]
    assert len(exports) == len(pages)
    assert exports[0]["resource"] == f"/api/v1/users/{student}/export"
    assert exports[0]["accessor"].startswith("admin-key:")
    assert MASTER_KEY not in str(log)


def test_reads_of_one_person_are_recorded_with_the_signed_in_principal(
    host: DevHost, client: httpx.Client
) -> None:
    student = f.new_id()
    auditor = f.new_id()
    principal = {
        "X-MS-CLIENT-PRINCIPAL": f.principal(auditor, "Admin", name="auditor@school.example")
    }
    client.get(f"v1/students/{student}/progress", headers=principal)
    client.get(f"v1/users/{student}/notifications")
    client.get(f"v1/reports/students/{student}")
    client.get(f"v1/students/{student}/recommendations")
    client.get(f"v1/students/{student}/progress", params={"x": "1"})
    client.get("v1/students/not-a-uuid/progress")  # refused: nothing was disclosed

    log = httpx.get(host.url(f"v1/users/{student}/disclosures"), headers=ADMIN, timeout=30).json()
    actions = [d["action"] for d in reversed(log["disclosures"])]
    assert actions == ["progress", "notifications", "student report", "recommendations", "progress"]
    first = log["disclosures"][-1]
    assert first["accessor"] == f"principal:auditor@school.example ({auditor}) [Admin]"
    assert first["outcome"] == "disclosed"
    assert log["disclosures"][0]["accessor"].startswith("key:")
    # Paging: newest first, one at a time.
    page = httpx.get(
        host.url(f"v1/users/{student}/disclosures"),
        params={"limit": "1"},
        headers=ADMIN,
        timeout=30,
    ).json()
    older = httpx.get(
        host.url(f"v1/users/{student}/disclosures"),
        params={"limit": "1", "cursor": page["next_cursor"]},
        headers=ADMIN,
        timeout=30,
    ).json()
    assert older["disclosures"][0] == log["disclosures"][1]


def encoded(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "not base64 at all",
        encoded({"x": 1}),
        encoded([1, 2]),
        encoded({"s": "nowhere", "p": None}),
        encoded({"s": "lesson_progress.student_id", "p": -5}),
        encoded({"s": "lesson_progress.student_id", "p": "1; DROP TABLE feedback"}),
        encoded({"s": "lesson_progress.student_id", "p": 2**70}),
        encoded({"s": "archive", "p": ["t", "x' or PartitionKey ne '"]}),
        encoded({"s": "archive", "p": ["t", "a/b"]}),
        encoded({"s": "archive", "p": "x"}),
    ],
)
def test_a_forged_export_cursor_is_a_400_with_a_message(host: DevHost, cursor: str) -> None:
    response = httpx.get(
        host.url(f"v1/users/{SOMEONE}/export"),
        params={"cursor": cursor},
        headers=ADMIN,
        timeout=30,
    )
    assert response.status_code == 400
    assert "cursor" in response.json()["error"]
