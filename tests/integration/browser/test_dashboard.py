"""The dashboards (SPEC 11) in a real browser, against the real app and stores.

A small class is seeded through the API once. Each page must show the same
figures as the API's JSON, fetched here; its live parts must change within 2 s
of a POST made here; axe-core must find no serious or critical violation; the
student and lesson pages must fit a phone's width. People sign in on a second
host running AUTH_MODE=principal, as test_people.py does; the session host
(AUTH_MODE=keys with keys set) asks the browser for a key.

Screenshots go to docs/img/dashboard-<page>.png only with UPDATE_SCREENSHOTS=1
(else to pytest's tmp dir), so a normal run leaves the repo as it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from devhost import DevHost
from shared.repositories.postgres import PostgresRepository
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.browser.conftest import DESKTOP, PHONE, ROOT, serious_violations
from tests.integration.browser.dashboard_class import (
    KEY_STORE,
    LESSON_TITLE,
    QUIZ_TITLE,
    SeededClass,
    give_key,
    num,
    pct,
    seed_class,
    share,
    short,
    sign_in,
)
from tests.integration.conftest import FUNCTION_KEY, MASTER_KEY, host_environ, running_host

LIVE_MS = 2000  # SPEC 11: a change shows within 2 s of the 202 that caused it


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def klass(host: DevHost, client: httpx.Client, postgres: PostgresRepository) -> SeededClass:
    return seed_class(client, host, postgres)


@pytest.fixture(scope="module")
def principal_host(test_run: TestRun) -> Iterator[DevHost]:
    """The same app and stores with AUTH_MODE=principal, trusting no client-sent principal."""
    environ = host_environ(test_run, AUTH_MODE="principal", LOCAL_TRUST_CLIENT_PRINCIPAL="0")
    with running_host(ROOT, environ, queues=False, timers=False) as running:
        yield running


def new_context(
    browser: Browser, viewport: dict[str, int] = DESKTOP, **options: Any
) -> BrowserContext:
    context = browser.new_context(viewport=viewport, timezone_id="UTC", locale="en-GB", **options)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def keyed(browser: Browser) -> Iterator[BrowserContext]:
    """A browser whose tabs hold the function key, as if it had been typed into the key form."""
    context = new_context(browser)
    give_key(context, FUNCTION_KEY)
    yield context
    context.close()


@pytest.fixture
def bare(browser: Browser) -> Iterator[BrowserContext]:
    """A browser with no key and no sign-in."""
    context = new_context(browser)
    yield context
    context.close()


# --- helpers ----------------------------------------------------------------------------------


class Errors(list[str]):
    """Script errors and CSP violations seen by a page (failed requests are expected: 401, 403)."""


def watch(page: Page) -> Errors:
    errors = Errors()
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}")
            if message.type == "error" and "Failed to load resource" not in message.text
            else None
        ),
    )
    return errors


def open_page(page: Page, host: DevHost, address: str) -> Errors:
    """Open a dashboard page and wait until every visible panel has left its loading state."""
    errors = watch(page)
    page.goto(host.url(f"dashboard/{address}"))
    settled(page)
    return errors


def settled(page: Page) -> None:
    page.wait_for_function(
        """() => document.querySelector('#page-state:not([hidden])') ||
           [...document.querySelectorAll('.panel:not([hidden]) .panel-body')]
             .every((b) => b.getAttribute('aria-busy') === 'false')"""
    )


def accessible(page: Page) -> None:
    assert serious_violations(page) == []


def fits(page: Page) -> None:
    """No horizontal scrolling of the page itself (tables may scroll in their own box).

    Waited for: after a resize, Chart.js redraws its canvases on the next frames."""
    page.wait_for_function(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth",
        timeout=3000,
    )


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    folder = ROOT / "docs" / "img" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    page.screenshot(path=str(folder / f"dashboard-{name}.png"), full_page=True)


def on_a_phone(page: Page, name: str, tmp_path: Path) -> None:
    """At a phone's width: nothing scrolls sideways, axe still finds nothing; back to desktop."""
    page.set_viewport_size(PHONE)
    fits(page)
    accessible(page)
    screenshot(page, name, tmp_path)
    page.set_viewport_size(DESKTOP)


def stat(page: Page, panel: str, label: str) -> str:
    return page.locator(f'#{panel} .stat:has(dt:text-is("{label}")) dd').inner_text()


def rows(page: Page, caption: str) -> list[list[str]]:
    """The cells' text of the table with this caption (also inside a closed <details>)."""
    table = page.locator("table", has=page.locator(f'caption:text-is("{caption}")'))
    cells: list[list[str]] = table.evaluate(
        "t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.trim()))"
    )
    return cells


def wire_statuses(page: Page) -> list[tuple[str, int]]:
    """(url, status) of each response as it came over the network, 304s included."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    urls: dict[str, str] = {}
    seen: list[tuple[str, int]] = []
    cdp.on(
        "Network.requestWillBeSent", lambda e: urls.update({e["requestId"]: e["request"]["url"]})
    )
    cdp.on(
        "Network.responseReceivedExtraInfo",
        lambda e: seen.append((urls.get(e["requestId"], ""), e["statusCode"])),
    )
    return seen


def wait_until(page: Page, condition: Callable[[], bool], timeout_ms: int = 5000) -> None:
    """Let the page run (events keep arriving) until `condition` holds."""
    for _ in range(timeout_ms // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError("condition not met in time")


def api(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def post(client: httpx.Client, *events: dict[str, Any]) -> None:
    response = client.post("v1/events", json={"events": list(events)})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events), response.text


# --- the pages, with the function key --------------------------------------------------------


def test_student_page_shows_the_students_records_live_also_on_a_phone(
    keyed: BrowserContext, host: DevHost, client: httpx.Client, klass: SeededClass, tmp_path: Path
) -> None:
    student = klass.students[0]
    page = keyed.new_page()
    errors = open_page(page, host, f"students/{student}")

    progress = api(client, f"v1/students/{student}/progress")
    for lesson in progress["lessons"]:
        item = page.locator(f'#progress li[data-id="{lesson["lesson_id"]}"]')
        expect(item.locator(".pct")).to_have_text(pct(lesson["progress_percent"]))
        assert float(item.locator("progress").get_attribute("value") or "nan") == pytest.approx(
            lesson["progress_percent"]
        )
    expect(page.locator("#progress li")).to_have_count(len(progress["lessons"]))
    expect(page.locator("#progress")).to_contain_text(LESSON_TITLE)  # from the overview

    notifications = api(client, f"v1/users/{student}/notifications")["notifications"]
    assert notifications
    expect(page.locator("#notifications li")).to_have_count(len(notifications))
    for item in notifications:
        expect(page.locator(f'#notifications li[data-id="{item["event_id"]}"]')).to_contain_text(
            short(item["actor_id"])
        )

    overview = api(client, f"v1/users/{student}/overview")
    for quiz in overview["quizzes"]:
        line = page.locator(f'#quizzes li[data-id="{quiz["quiz_id"]}"]')
        expect(line).to_contain_text(f"best score {num(quiz['best_score'])}")
        expect(line).to_contain_text(QUIZ_TITLE)

    report = api(client, f"v1/reports/students/{student}")
    for label, key in (
        ("Lessons started", "lessons_started"),
        ("Lessons completed", "lessons_completed"),
        ("Quiz attempts", "quiz_attempts"),
        ("Quizzes passed", "quizzes_passed"),
        ("Average quiz score", "avg_quiz_score"),
        ("Forum posts", "forum_posts"),
        ("Likes received", "likes_received"),
        ("Feedback received", "feedback_received"),
        ("Average feedback score", "avg_feedback_score"),
    ):
        assert stat(page, "report", label) == num(report[key]), label
    assert stat(page, "report", "Average progress") == pct(report["avg_progress_percent"])
    assert len(rows(page, "Recent activity (newest first)")) == len(report["recent_activity"])
    items = api(client, f"v1/students/{student}/recommendations", limit=5)["items"]
    assert items
    for item in items:
        expect(page.locator(f'#recommendations li[data-id="{item["id"]}"] .reason')).to_have_text(
            item["reason"]
        )
    accessible(page)
    screenshot(page, "students", tmp_path)
    on_a_phone(page, "students-phone", tmp_path)

    # Polling costs little: an unchanged view is revalidated with its ETag and answered 304
    # (the browser's cache hands the page a 200; the wire status is in the DevTools protocol).
    wire = wire_statuses(page)
    wait_until(page, lambda: any("/progress" in url and code == 304 for url, code in wire))

    # Live: a new lesson opened, and a reply to the student's post.
    lesson = f.new_id()
    post(client, f.lesson_progress(student_id=student, lesson_id=lesson, progress_percent=55.5))
    expect(page.locator(f'#progress li[data-id="{lesson}"] .pct')).to_have_text(
        "55.5%", timeout=LIVE_MS
    )
    reply = f.forum_activity(
        user_id=klass.students[4],
        action_type="reply",
        parent_post_id=klass.posts[student],
        thread_id=klass.threads[0],
        content="Same question here.",
        created_at=f.ago(seconds=1),
    )
    post(client, reply)
    expect(page.locator(f'#notifications li[data-id="{reply["event_id"]}"]')).to_be_visible(
        timeout=LIVE_MS
    )
    assert errors == []


def test_quiz_page_shows_the_leaderboard_live_the_distribution_and_the_answers(
    keyed: BrowserContext, host: DevHost, client: httpx.Client, klass: SeededClass, tmp_path: Path
) -> None:
    page = keyed.new_page()
    errors = open_page(page, host, f"quizzes/{klass.quiz}")
    board = api(client, f"v1/quizzes/{klass.quiz}/leaderboard", limit=100)
    assert rows(page, "Best score per student") == [
        [num(e["rank"]), short(e["student_id"]), num(e["best_score"]), num(e["attempts"])]
        for e in board["entries"]
    ]
    # The distribution: students by best score, the same students as the board.
    distribution = rows(page, "Students by best score (5 on the leaderboard)")
    counts = {label: int(count) for label, count in distribution}
    for entry in board["entries"]:
        counts[num(entry["best_score"])] -= 1
    assert set(counts.values()) == {0}

    report = api(client, f"v1/reports/quizzes/{klass.quiz}")
    assert stat(page, "summary", "Pass rate") == share(report["pass_rate"])
    assert stat(page, "summary", "Attempts") == num(report["attempts"])
    assert stat(page, "summary", "Median score") == num(report["median_score"])
    for question, answers in report["answer_distribution"].items():
        shown = rows(page, f"Question {question}: attempts per answer")
        assert {answer: int(count) for answer, count in shown} == answers
    accessible(page)
    screenshot(page, "quizzes", tmp_path)

    # Live: a new best score tops the board.
    newcomer = f.new_id()
    post(client, f.quiz_attempt(student_id=newcomer, quiz_id=klass.quiz, score=10.0))
    first_row = page.locator("#leaderboard tbody tr").first
    expect(first_row).to_contain_text(short(newcomer), timeout=LIVE_MS)
    expect(first_row.locator("td").nth(1)).to_have_text("10")
    assert errors == []


def test_lesson_page_shows_each_students_bar_live_and_the_report_also_on_a_phone(
    keyed: BrowserContext, host: DevHost, client: httpx.Client, klass: SeededClass, tmp_path: Path
) -> None:
    page = keyed.new_page()
    errors = open_page(page, host, f"lessons/{klass.lesson}")
    live = api(client, f"v1/lessons/{klass.lesson}/progress", limit=100)
    assert page.locator("#students li").evaluate_all("items => items.map(i => i.dataset.id)") == [
        s["student_id"] for s in live["students"]
    ]
    for student in live["students"]:
        expect(page.locator(f'#students li[data-id="{student["student_id"]}"] .pct')).to_have_text(
            pct(student["progress_percent"])
        )

    report = api(client, f"v1/reports/lessons/{klass.lesson}", days=30)
    assert stat(page, "completion", "Started") == num(report["students_started"])
    assert stat(page, "completion", "Completed") == num(report["students_completed"])
    assert stat(page, "completion", "Completion rate") == share(report["completion_rate"])
    assert stat(page, "completion", "Average progress") == pct(report["avg_progress_percent"])
    assert rows(page, "Students who read each section") == [
        [name, num(count)] for name, count in report["section_readers"].items()
    ]
    assert rows(page, "Active students and their average progress per day (last 30 days)") == [
        [day["day"], num(day["active_students"]), pct(day["avg_progress_percent"])]
        for day in report["progress_over_time"]
    ]
    cohorts = api(client, f"v1/reports/cohorts/lessons/{klass.lesson}")["cohorts"]
    assert rows(
        page, "Share of each week's starters who completed the lesson within 1, 2 and 4 weeks"
    ) == [
        [
            c["week"],
            num(c["students"]),
            share(c["completed_within_1_week"]),
            share(c["completed_within_2_weeks"]),
            share(c["completed_within_4_weeks"]),
        ]
        for c in cohorts
    ]
    accessible(page)
    screenshot(page, "lessons", tmp_path)
    page.locator("#sections details summary").click()  # an opened table must fit too
    on_a_phone(page, "lessons-phone", tmp_path)

    # Live: a student moves on, and a new one opens the lesson.
    moving, newcomer = klass.students[3], f.new_id()
    post(
        client,
        f.lesson_progress(
            student_id=moving,
            lesson_id=klass.lesson,
            progress_percent=47.25,
            started_at=f.ago(days=3),
        ),
    )
    expect(page.locator(f'#students li[data-id="{moving}"] .pct')).to_have_text(
        "47.25%", timeout=LIVE_MS
    )
    post(client, f.lesson_progress(student_id=newcomer, lesson_id=klass.lesson, progress_percent=5))
    expect(page.locator("#students li").first).to_have_attribute(
        "data-id", newcomer, timeout=LIVE_MS
    )
    assert errors == []


def test_teacher_page_shows_the_teacher_report_with_charts(
    keyed: BrowserContext, host: DevHost, client: httpx.Client, klass: SeededClass, tmp_path: Path
) -> None:
    page = keyed.new_page()
    errors = open_page(page, host, f"teachers/{klass.teacher}")
    report = api(client, f"v1/reports/teachers/{klass.teacher}")
    assert rows(page, "Content created and updated, by type") == [
        [kind, num(report["content_created"][kind]), num(report["content_updated"][kind])]
        for kind in ("lesson", "quiz", "assignment")
    ]
    assert rows(page, "Feedback given by type") == [
        [kind, num(report["feedback_given"][kind])] for kind in ("text", "rubric", "audio")
    ]
    assert stat(page, "feedback", "Average score given") == num(report["avg_feedback_score"])
    assert stat(page, "live", "Sessions") == num(report["live_sessions"])
    assert stat(page, "live", "Messages sent") == num(report["messages_sent"])
    assert stat(page, "live", "Polls launched") == num(report["polls_launched"])
    expect(page.locator(f'#classes a[href$="/lessons/{klass.lesson}"]')).to_have_text(LESSON_TITLE)
    expect(page.locator(f'#classes a[href$="/live/{klass.session}"]')).to_be_visible()
    assert page.locator("#classes canvas, #content canvas, #feedback canvas").count() == 2
    accessible(page)
    screenshot(page, "teachers", tmp_path)
    assert errors == []


def test_live_page_shows_who_is_in_and_follows_the_class(
    keyed: BrowserContext, host: DevHost, client: httpx.Client, klass: SeededClass, tmp_path: Path
) -> None:
    page = keyed.new_page()
    errors = open_page(page, host, f"live/{klass.session}")
    session = api(client, f"v1/live/sessions/{klass.session}")
    shown = {row[0]: row for row in rows(page, LIVE_CAPTION)}
    for teacher in session["teachers"]:
        row = shown[short(teacher["teacher_id"])]
        assert row[1].startswith("In now" if teacher["active"] else "Left")
        assert row[4:] == [num(len(teacher["polls_launched"])), num(teacher["messages_sent"])]
    assert stat(page, "now", "Teachers in now") == "1"
    assert stat(page, "now", "Messages sent") == num(
        sum(t["messages_sent"] for t in session["teachers"])
    )
    accessible(page)
    screenshot(page, "live", tmp_path)

    # Live: a third teacher joins, and the first one sends more messages.
    joining = f.new_id()
    post(
        client,
        f.live_class_engagement(
            teacher_id=joining,
            class_id=klass.class_id,
            session_id=klass.session,
            joined_at=f.ago(seconds=5),
            left_at=None,
            duration_seconds=5,
            polls_launched=[],
            messages_sent=1,
        ),
    )
    expect(page.locator(f'#teachers [title="{joining}"]')).to_be_visible(timeout=LIVE_MS)
    expect(page.locator('#now .stat:has(dt:text-is("Teachers in now")) dd')).to_have_text("2")
    assert errors == []


LIVE_CAPTION = "Teachers: when they joined, how long they have been in, polls and messages"


def test_activity_page_shows_events_over_time_and_the_forum(
    keyed: BrowserContext, host: DevHost, client: httpx.Client, klass: SeededClass, tmp_path: Path
) -> None:
    page = keyed.new_page()
    errors = open_page(page, host, "activity")
    trending = api(client, "v1/reports/forum/trending", hours=24, limit=10)["threads"]
    shown = {row[0]: row[1:] for row in rows(page, "Threads by actions in the last 24 hours")}
    for thread in trending:
        if thread["thread_id"] in klass.threads:
            assert shown[short(thread["thread_id"])] == [
                num(thread[key]) for key in ("actions", "posts", "replies", "likes")
            ]
    contributors = api(client, "v1/reports/forum/contributors", days=7, limit=10)["contributors"]
    assert [row[0] for row in rows(page, "Users by posts and replies in the last 7 days")] == [
        short(c["user_id"]) for c in contributors
    ]
    screenshot(page, "activity", tmp_path)

    # Minute buckets: the seeded roll-ups, minute by minute, as the API counts them.
    page.get_by_label("Minute (last hour)").check()
    caption = "Unique events by type per minute"
    expect(page.locator(f'#events caption:text-is("{caption}")')).to_have_count(1)
    table = rows(page, caption)
    header = page.locator(f'#events table:has(caption:text-is("{caption}")) thead th').evaluate_all(
        "cells => cells.map(c => c.textContent.trim())"
    )
    labels = {
        "lesson_progress": "Lesson progress",
        "quiz_attempt": "Quiz attempts",
        "forum_activity": "Forum",
        "content_activity": "Content",
        "feedback": "Feedback",
        "live_class_engagement": "Live classes",
    }
    by_label = {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in table}
    assert len(table) == 60
    for minute in klass.rollup_minutes:
        report = api(
            client,
            "v1/reports/activity",
            bucket="minute",
            **{"from": f.iso(minute), "to": f.iso(minute.replace(second=59))},
        )
        counts = report["buckets"][0]["counts"]
        row = by_label[minute.strftime("%H:%M")]
        for kind, count in counts.items():
            assert row[labels[kind]] == num(count), (minute, kind)
    accessible(page)
    page.get_by_label("Day (last 30 days)").check()
    day_caption = "Unique events by type per day"
    expect(page.locator(f'#events caption:text-is("{day_caption}")')).to_have_count(1)
    assert len(rows(page, "Unique events by type per day")) == 30
    assert errors == []


def test_admin_page_shows_health_and_a_users_records(
    browser: Browser, host: DevHost, client: httpx.Client, klass: SeededClass, tmp_path: Path
) -> None:
    context = new_context(browser, accept_downloads=True)
    give_key(context, MASTER_KEY)  # export, disclosures and erasure are admin-level
    page = context.new_page()
    errors = open_page(page, host, "admin")
    health = httpx.get(host.url("v1/health"), timeout=30).json()
    assert {row[0]: row[1] for row in rows(page, "Dependencies")} == {
        name: "Up" if dep["status"] == "up" else "Down"
        for name, dep in health["dependencies"].items()
    }
    if health.get("poison_queues"):  # shown when health carries them, omitted otherwise
        caption = page.locator("#health caption", has_text="poison queues").inner_text()
        assert {name: int(n) for name, n in rows(page, caption)} == health["poison_queues"]
    else:
        expect(page.locator("#health caption", has_text="poison queues")).to_have_count(0)

    # One read of the student's records, and one refused (another student trying).
    student = klass.students[2]
    api(client, f"v1/reports/students/{student}")
    snooping = {"X-MS-CLIENT-PRINCIPAL": f.principal(klass.students[3], "Student")}
    assert client.get(f"v1/students/{student}/progress", headers=snooping).status_code == 403
    page.get_by_label("User id").fill(student)
    page.get_by_role("button", name="Show disclosures").click()
    disclosures = httpx.get(
        host.url(f"v1/users/{student}/disclosures"),
        headers={"x-functions-key": MASTER_KEY},
        params={"limit": 100},
        timeout=30,
    ).json()["disclosures"]
    table = page.locator("#user-out table")
    expect(table.locator("tbody tr")).to_have_count(len(disclosures))
    expect(table.locator("tbody tr").first).to_contain_text("Refused")
    expect(table.locator("tbody tr").first).to_contain_text("student-record")
    expect(table).to_contain_text("Disclosed")
    accessible(page)
    screenshot(page, "admin", tmp_path)

    with page.expect_download() as download:
        page.get_by_role("button", name="Download export").click()
    exported = json.loads(Path(download.value.path()).read_text())
    first = httpx.get(
        host.url(f"v1/users/{student}/export"),
        headers={"x-functions-key": MASTER_KEY},
        params={"limit": 5000},
        timeout=30,
    ).json()
    assert exported["user_id"] == student

    def records(export: dict[str, Any]) -> dict[str, Any]:
        # The access log grows with every read, the export's own included.
        return {k: v for k, v in export["postgres"].items() if not k.startswith("access_log")}

    assert records(exported) == records(first)
    assert records(exported)["lesson_progress.student_id"]
    assert len(exported["archive"]) == len(first["archive"])

    # Erasure, confirmed by typing the id again.
    leaver = f.new_id()
    post(client, f.lesson_progress(student_id=leaver))
    page.get_by_label("User id").fill(leaver)
    page.get_by_role("button", name="Erase…").click()
    erase = page.get_by_role("button", name="Erase permanently")
    expect(erase).to_be_disabled()
    page.get_by_label("The user id, again").fill(leaver[:-1])
    expect(erase).to_be_disabled()
    page.get_by_label("The user id, again").fill(leaver)
    accessible(page)
    erase.click()
    expect(page.locator("#user-out")).to_contain_text("Erased.")
    redis_rows = rows(page, "What was erased")
    assert redis_rows[2][0] == "Redis"
    assert int(redis_rows[2][1]) >= 1
    assert api(client, f"v1/students/{leaver}/progress")["lessons"] == []
    assert errors == []
    context.close()


def test_demo_page_sends_through_the_tracker_and_the_teachers_pages_follow(
    keyed: BrowserContext, host: DevHost, tmp_path: Path
) -> None:
    demo = keyed.new_page()
    errors = open_page(demo, host, "demo")
    accessible(demo)
    demo.get_by_role("button", name="Mark as read").first.click()
    expect(demo.locator("#sent .log li").first).to_contain_text("accepted")
    lesson_href = demo.get_by_role("link", name="The lesson's page").get_attribute("href")
    student = demo.locator("#who-demo p [title]").first.get_attribute("title")
    assert lesson_href
    assert student

    lesson = keyed.new_page()  # another tab
    lesson_errors = watch(lesson)
    lesson.goto(host.base_url + lesson_href)
    expect(lesson.locator(f'#students li[data-id="{student}"] .pct')).to_have_text("33.33%")

    demo.bring_to_front()
    demo.get_by_role("button", name="Mark as read").first.click()
    expect(lesson.locator(f'#students li[data-id="{student}"] .pct')).to_have_text(
        "66.67%", timeout=LIVE_MS
    )
    for question, answer in (("What is 1/2 + 1/4?", "3/4"), ("Which is the same as 2/4?", "1/2")):
        demo.get_by_role("group", name=question).get_by_label(answer, exact=True).check()
    demo.get_by_role("group", name="What is 1/3 + 1/3?").get_by_label("1/9").check()
    demo.get_by_role("button", name="Submit answers").click()
    expect(demo.locator("#quiz .result")).to_contain_text("2 of 3 right, passed")
    quiz_href = demo.get_by_role("link", name="The quiz's page").get_attribute("href")
    quiz = keyed.new_page()
    quiz.goto(host.base_url + (quiz_href or ""))
    expect(quiz.locator(f'#leaderboard [title="{student}"]')).to_be_visible()
    screenshot(demo, "demo", tmp_path)
    assert errors == []
    assert lesson_errors == []


def test_index_offers_a_box_to_open_a_page_by_id(
    keyed: BrowserContext, host: DevHost, klass: SeededClass
) -> None:
    page = keyed.new_page()
    errors = open_page(page, host, "")
    expect(page.locator("#mine [data-state=signin]")).to_be_visible()
    page.get_by_label("Page", exact=True).select_option("lessons")
    page.get_by_label("Id", exact=True).fill("not-an-id")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("alert")).to_contain_text("is not an id")
    accessible(page)
    page.get_by_label("Id", exact=True).fill(klass.lesson)
    page.get_by_role("button", name="Open").click()
    expect(page).to_have_url(host.url(f"dashboard/lessons/{klass.lesson}"))
    expect(page.locator("#students li").first).to_be_visible()
    assert errors == []


# --- people in the browser (AUTH_MODE=principal) ----------------------------------------------


def test_a_student_sees_their_own_page_and_is_refused_anothers(
    browser: Browser, principal_host: DevHost, klass: SeededClass, tmp_path: Path
) -> None:
    me, other = klass.students[0], klass.students[1]
    context = new_context(browser)
    sign_in(context, principal_host, me, "Student")
    page = context.new_page()
    errors = open_page(page, principal_host, f"students/{me}")
    expect(page.locator("#who")).to_contain_text("Signed in as")
    expect(page.locator(f'#progress li[data-id="{klass.lesson}"] .pct')).to_have_text("100%")
    expect(page.locator("#notifications li").first).to_be_visible()

    page.goto(principal_host.url(f"dashboard/students/{other}"))
    refused = page.locator("#page-state [data-state=refused]")
    expect(refused).to_contain_text("You may not see this")
    expect(refused).to_contain_text("student-record")
    expect(page.locator(".panel:visible")).to_have_count(0)
    text = page.locator("main").inner_text()
    assert "80%" not in text
    assert short(klass.lesson) not in text
    accessible(page)
    screenshot(page, "refused", tmp_path)

    # A student sees the leaderboard of a quiz they took: ranks and scores, only their own id.
    page.goto(principal_host.url(f"dashboard/quizzes/{klass.quiz}"))
    expect(page.locator("#leaderboard tr.viewer")).to_contain_text(short(me))
    shown = page.locator("#leaderboard tbody tr").count()
    expect(page.locator("#leaderboard .id-hidden")).to_have_count(shown - 1)
    assert page.locator("#leaderboard [title]").evaluate_all("e => e.map(x => x.title)") == [me]
    expect(page.locator("#summary [data-state=note]")).to_be_visible()
    assert errors == []
    context.close()


def test_a_teacher_sees_their_lesson_and_their_start_page(
    browser: Browser, principal_host: DevHost, klass: SeededClass, tmp_path: Path
) -> None:
    context = new_context(browser)
    sign_in(context, principal_host, klass.teacher, "Teacher")
    page = context.new_page()
    errors = open_page(page, principal_host, "")
    expect(page.locator(f'#mine a[href$="/lessons/{klass.lesson}"]')).to_have_text(LESSON_TITLE)
    expect(page.locator(f'#mine a[href$="/quizzes/{klass.quiz}"]')).to_have_text(QUIZ_TITLE)
    expect(page.locator(f'#mine a[href$="/live/{klass.session}"]')).to_be_visible()
    for student in klass.students:
        expect(page.locator(f'#mine a[href$="/students/{student}"]')).to_be_visible()
    accessible(page)
    screenshot(page, "index", tmp_path)

    page.locator(f'#mine a[href$="/lessons/{klass.lesson}"]').click()
    settled(page)
    expect(page.locator("h1")).to_contain_text(LESSON_TITLE)
    expect(page.locator("#students li").first).to_be_visible()
    expect(page.locator("#completion .stat").first).to_be_visible()
    assert errors == []
    context.close()


def test_without_a_sign_in_the_page_offers_one(
    bare: BrowserContext, principal_host: DevHost, klass: SeededClass
) -> None:
    page = bare.new_page()
    errors = open_page(page, principal_host, f"students/{klass.students[0]}")
    box = page.locator("#page-state [data-state=signin]")
    expect(box).to_contain_text("Sign in")
    link = box.get_by_role("link", name="Sign in")
    here = f"%2Fapi%2Fdashboard%2Fstudents%2F{klass.students[0]}"
    expected = f"/.auth/login/dev?post_login_redirect_uri={here}"
    expect(link).to_have_attribute("href", expected)
    accessible(page)
    assert errors == []


# --- keys, and the states -------------------------------------------------------------------


def test_the_key_form_asks_once_and_keeps_the_key_for_the_tab(
    bare: BrowserContext, host: DevHost, klass: SeededClass, tmp_path: Path
) -> None:
    page = bare.new_page()
    errors = watch(page)
    page.goto(host.url(f"dashboard/students/{klass.students[0]}"))
    form = page.locator("#key-box")
    expect(form).to_be_visible()
    expect(page.locator("#key-box")).to_have_count(1)  # one form, however many requests wait
    accessible(page)
    screenshot(page, "key", tmp_path)
    page.get_by_label("Function key").fill("not-the-key")
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#key-error")).to_contain_text("not accepted")
    page.get_by_label("Function key").fill(FUNCTION_KEY)
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#progress li").first).to_be_visible()
    expect(form).to_have_count(0)
    assert page.evaluate(f"sessionStorage.getItem({KEY_STORE!r})") == FUNCTION_KEY
    settled(page)
    assert errors == []


def test_the_states_each_look_different(
    keyed: BrowserContext, host: DevHost, client: httpx.Client, tmp_path: Path
) -> None:
    # Loading: the page while its first answer is still on the way (held here).
    held: list[Route] = []
    waiting = keyed.new_page()
    waiting.route("**/api/v1/students/*/progress", lambda route: held.append(route))
    waiting.goto(host.url(f"dashboard/students/{f.new_id()}"))
    loading = waiting.locator("#progress [data-state=loading]")
    expect(loading).to_have_text("Loading…")
    for _ in range(100):  # until the request reaches the route
        if held:
            break
        waiting.wait_for_timeout(20)
    accessible(waiting)
    looks = {"loading": look(loading)}
    held[0].abort()

    # Empty: a session nobody has joined yet; it fills in live when someone does.
    session = f.new_id()
    page = keyed.new_page()
    errors = open_page(page, host, f"live/{session}")
    empty = page.locator("#teachers [data-state=empty]")
    expect(empty).to_contain_text("Nothing recorded yet")
    accessible(page)
    looks["empty"] = look(empty)
    post(client, f.live_class_engagement(session_id=session, left_at=None))
    expect(page.locator("#teachers tbody tr")).to_have_count(1, timeout=LIVE_MS)

    # Unavailable: a 503 (or no answer) shows "retrying" and polling goes on.
    failing = keyed.new_page()
    failing.route(
        "**/api/v1/live/sessions/*",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "1", "Content-Type": "application/json"},
            body='{"error": "redis unavailable"}',
        ),
    )
    unavailable_errors = open_page(failing, host, f"live/{session}")
    unavailable = failing.locator("#teachers [data-state=unavailable]")
    expect(unavailable).to_contain_text("Service unavailable, retrying")
    accessible(failing)
    screenshot(failing, "unavailable", tmp_path)
    looks["unavailable"] = look(unavailable)
    failing.unroute("**/api/v1/live/sessions/*")
    expect(failing.locator("#teachers tbody tr")).to_have_count(1, timeout=6000)

    # Refused: its own look too (a teacher who never joined the session).
    refusing = keyed.new_page()
    refusing.route(
        "**/api/v1/live/sessions/*",
        lambda route: route.fulfill(
            status=403,
            headers={"Content-Type": "application/json"},
            body='{"error": "refused by rule live-session: a session the teacher joined"}',
        ),
    )
    open_page(refusing, host, f"live/{session}")
    looks["refused"] = look(refusing.locator("#page-state [data-state=refused]"))

    texts = {name: value[0] for name, value in looks.items()}
    assert len(set(texts.values())) == len(texts), texts
    borders = {name: value[1] for name, value in looks.items()}
    assert len(set(borders.values())) == len(borders), borders  # not colour alone
    assert errors == []
    assert unavailable_errors == []


def look(state: Any) -> tuple[str, str]:
    """A state's title and its border style (what tells it apart besides colour)."""
    title = state.locator(".state-title").inner_text()
    border: str = state.evaluate(
        "e => { const s = getComputedStyle(e); return s.borderTopStyle + ' ' + s.borderLeftWidth }"
    )
    return title, border
