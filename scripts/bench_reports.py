"""Latency of every report and the recommendations on a loaded data set.

    .venv/bin/python -m scripts.load_dataset            # once: 10 million events
    .venv/bin/python -m scripts.bench_reports [--dsn DSN] [--samples 200] [--write-docs]

A trial on a small data set of one's own (never --write-docs from it):

    DSN=postgresql://postgres@127.0.0.1:5432/mine
    .venv/bin/python -m scripts.load_dataset --events 200000 --dsn $DSN
    .venv/bin/python -m scripts.bench_reports --dsn $DSN --samples 5

Calls the service functions (``shared.services.reports`` and
``.recommendations``) directly against the database with the real
``ReportsRepository``, one request at a time, so the figures are the query
plus the shaping work, without HTTP. For the per-entity reports it measures
two samplings: ``uniform`` (every student / lesson / quiz / teacher equally
likely, as a teacher browsing a class) and ``by activity`` (the entity of a
random event, so the busiest are asked about most). Prints p50/p95/p99 and,
with ``--write-docs``, replaces the figures section of docs/reports.md.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from scripts.benchlib import Bench
from scripts.load_dataset import DEFAULT_DSN
from shared.repositories.access import AccessRepository
from shared.repositories.reports import ReportsRepository
from shared.services import recommendations, reports

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reports.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
PLANS_START, PLANS_END = "<!-- plans:start -->", "<!-- plans:end -->"

# entity -> (uniform sampling query, activity-weighted sampling query)
SAMPLES = {
    "student": (
        "SELECT student_id FROM lesson_progress GROUP BY student_id",
        "SELECT student_id FROM lesson_progress_events TABLESAMPLE SYSTEM (0.5)",
    ),
    "lesson": (
        "SELECT DISTINCT lesson_id FROM lesson_progress",
        "SELECT lesson_id FROM lesson_progress_events TABLESAMPLE SYSTEM (0.5)",
    ),
    "quiz": (
        "SELECT DISTINCT quiz_id FROM quiz_attempts",
        "SELECT quiz_id FROM quiz_attempts TABLESAMPLE SYSTEM (1)",
    ),
    "teacher": (
        "SELECT DISTINCT teacher_id FROM feedback",
        "SELECT teacher_id FROM feedback TABLESAMPLE SYSTEM (2)",
    ),
}


# entity -> a teacher whose access rule (docs/access.md) lets them read it: the
# creator of a lesson the student took, or of the lesson / quiz itself.
TEACHER_OF = {
    "student": "SELECT c.teacher_id FROM lesson_progress AS lp "
    "JOIN content_activity AS c ON c.content_id = lp.lesson_id "
    "WHERE lp.student_id = %s LIMIT 1",
    "lesson": "SELECT teacher_id FROM content_activity WHERE content_id = %s LIMIT 1",
    "quiz": "SELECT teacher_id FROM content_activity WHERE content_id = %s LIMIT 1",
}


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(call: Callable[[], Any], runs: int) -> list[float]:
    call()  # warm the connection and the plan cache
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def sample_ids(dsn: str, rng: random.Random, count: int) -> dict[str, list[uuid.UUID]]:
    picked: dict[str, list[uuid.UUID]] = {}
    with psycopg.connect(dsn) as conn:
        for entity, (uniform, weighted) in SAMPLES.items():
            everyone = [row[0] for row in conn.execute(uniform)]
            events = [row[0] for row in conn.execute(weighted)]
            picked[f"{entity}/uniform"] = [rng.choice(everyone) for _ in range(count)]
            picked[f"{entity}/by activity"] = [rng.choice(events) for _ in range(count)]
            teachers = [row[0] for row in conn.execute("SELECT DISTINCT teacher_id FROM feedback")]
            picked["teacher/any"] = [rng.choice(teachers) for _ in range(count)]
    return picked


def teachers_of(dsn: str, ids: dict[str, list[uuid.UUID]]) -> dict[str, list[uuid.UUID]]:
    """For every sampled student, lesson and quiz, a teacher the access rules let in."""
    found: dict[str, list[uuid.UUID]] = {}
    with psycopg.connect(dsn) as conn:
        for key, sampled in ids.items():
            entity = key.split("/")[0]
            if entity in TEACHER_OF:
                rows = [conn.execute(TEACHER_OF[entity], (i,)).fetchone() for i in sampled]
                if any(row is None for row in rows):
                    raise SystemExit(
                        f"bench_reports: a sampled {entity} has no teacher; reload the data set "
                        "(python -m scripts.load_dataset links content to lessons and quizzes)"
                    )
                found[key] = [row[0] for row in rows if row is not None]
    return found


def plans(dsn: str, ids: dict[str, list[uuid.UUID]], now: datetime) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of every report query for one sampled entity, trimmed.

    Values are inlined (client-side binding) so each plan is the one the
    repository gets: it never prepares its statements.
    """
    from shared.repositories import report_queries as sql
    from shared.repositories.reports import ReportsRepository, utc_date
    from shared.services.reports import whole_days_since

    student, lesson = ids["student/uniform"][0], ids["lesson/uniform"][0]
    quiz, teacher = ids["quiz/uniform"][0], ids["teacher/uniform"][0]
    cases: list[tuple[str, Any, dict[str, Any]]] = [
        ("student: summary", sql.STUDENT_SUMMARY, {"student": student}),
        ("student: recent_activity", sql.RECENT_ACTIVITY, {"user": student, "limit": 20}),
        ("lesson: summary", sql.LESSON_SUMMARY, {"lesson": lesson}),
        ("lesson: section_readers", sql.SECTION_READERS, {"lesson": lesson}),
        (
            "lesson: progress_over_time (30 days)",
            sql.PROGRESS_OVER_TIME,
            {"lesson": lesson, "since": utc_date(whole_days_since(now, 30))},
        ),
        ("quiz: summary", sql.QUIZ_SUMMARY, {"quiz": quiz}),
        ("quiz: answer_distribution", sql.ANSWER_DISTRIBUTION, {"quiz": quiz}),
        ("teacher: content", sql.TEACHER_CONTENT, {"teacher": teacher}),
        ("teacher: feedback", sql.TEACHER_FEEDBACK, {"teacher": teacher}),
        ("teacher: live", sql.TEACHER_LIVE, {"teacher": teacher}),
        (
            "forum trending (24 h)",
            sql.FORUM_TRENDING,
            {"since": now - timedelta(hours=24), "limit": 10},
        ),
        (
            "forum contributors (7 days)",
            sql.FORUM_CONTRIBUTORS,
            {"since": utc_date(whole_days_since(now, 7)), "limit": 10},
        ),
        (
            "activity (1 day by minute)",
            sql.ACTIVITY_MINUTES,
            {"from": now - timedelta(days=1), "to": now},
        ),
        (
            "activity (120 days by day)",
            sql.ACTIVITY_TOTALS,
            {"unit": "day", "from": now - timedelta(days=120), "to": now},
        ),
        ("cohorts", sql.COHORTS, {"lesson": lesson}),
        ("recommendations: in progress", sql.IN_PROGRESS, {"student": student, "limit": 5}),
        ("recommendations: not passed", sql.NOT_PASSED, {"student": student, "limit": 5}),
        (
            "recommendations: next lessons",
            sql.NEXT_LESSONS,
            {"student": student, "limit": 5, "lessons": 10, "peers": 50},
        ),
    ]
    out = []
    # The session settings the repository's connections have (JIT off).
    with psycopg.connect(dsn, options=ReportsRepository.SESSION_OPTIONS or "") as conn:
        binder = psycopg.ClientCursor(conn)
        for title, query, params in cases:
            text = binder.mogrify(query, params)
            lines = [row[0] for row in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + text)]
            kept = []
            skip_filter = False
            for line in lines:
                # Empty monthly partitions add two lines each and say nothing.
                if "rows=0 loops" in line and "Seq Scan on" in line:
                    skip_filter = True
                    continue
                if skip_filter and line.strip().startswith("Filter:"):
                    continue
                skip_filter = False
                kept.append(line)
            out.append(f"#### {title}\n\n```\n" + "\n".join(kept) + "\n```\n")
    return "\n".join(out)


def replace_section(text: str, start: str, end: str, body: str) -> str:
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    return before + start + "\n" + body + "\n" + end + after


def dataset(dsn: str) -> tuple[int, str]:
    try:
        conn = psycopg.connect(dsn)
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"bench_reports: cannot open the data set ({exc}).\n"
            "Load it first: .venv/bin/python -m scripts.load_dataset (about 5 minutes)"
        ) from exc
    with conn:
        events = conn.execute("SELECT count(*) FROM event_ledger").fetchone()
        info = conn.execute("SELECT to_regclass('dataset_info') IS NOT NULL").fetchone()
        note = ""
        if info and info[0]:
            row = conn.execute(
                "SELECT seconds, loaded_at FROM dataset_info ORDER BY loaded_at DESC LIMIT 1"
            ).fetchone()
            if row:
                note = f"loaded in {row[0]:.0f} s on {row[1]:%Y-%m-%d}"
    return (int(events[0]) if events else 0), note


BENCH = Bench(__doc__, seed=1)
BENCH.add("--dsn", default=DEFAULT_DSN)
BENCH.add("--samples", type=int, default=200, help="requests per endpoint")
BENCH.add("--write-docs", action="store_true")
BENCH.add("--plans", action="store_true", help="also write the query plans")


def bench(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    events, load_note = dataset(args.dsn)
    ids = sample_ids(args.dsn, rng, args.samples)
    now = datetime.now(UTC)
    teachers = teachers_of(args.dsn, ids)
    rows: list[tuple[str, str, list[float]]] = []
    with (
        ReportsRepository(args.dsn, max_size=1) as repo,
        AccessRepository(args.dsn, max_size=1) as access,
    ):

        def each(name: str, entity: str, call: Callable[[uuid.UUID], Any]) -> None:
            for sampling in ("uniform", "by activity"):
                queue = iter(ids[f"{entity}/{sampling}"] * 2)
                timings = measure(lambda q=queue: call(next(q)), args.samples)  # type: ignore[misc]
                rows.append((name, sampling, timings))

        def as_teacher(
            name: str,
            entity: str,
            check: Callable[[uuid.UUID, uuid.UUID], bool],
            call: Callable[[uuid.UUID], Any],
        ) -> None:
            """The read as a teacher signed in: the access check (uncached) then the report."""
            for sampling in ("uniform", "by activity"):
                key = f"{entity}/{sampling}"
                queue = iter(list(zip(teachers[key], ids[key], strict=True)) * 2)

                def read(q: Any = queue) -> None:
                    teacher, target = next(q)
                    if not check(teacher, target):
                        raise SystemExit(f"bench_reports: {name}: the teacher was refused")
                    call(target)

                rows.append((f"{name} as teacher", sampling, measure(read, args.samples)))

        each("students/{id}", "student", lambda i: reports.student_report(i, repo))
        each("lessons/{id}", "lesson", lambda i: reports.lesson_report(i, 30, now, repo))
        each("quizzes/{id}", "quiz", lambda i: reports.quiz_report(i, repo))
        each("teachers/{id}", "teacher", lambda i: reports.teacher_report(i, repo))
        each("cohorts/lessons/{id}", "lesson", lambda i: reports.lesson_cohorts(i, repo))
        each(
            "students/{id}/recommendations",
            "student",
            lambda i: recommendations.recommend(i, 5, repo),
        )
        as_teacher(
            "students/{id}",
            "student",
            access.teacher_has_interest,
            lambda i: reports.student_report(i, repo),
        )
        as_teacher(
            "students/{id}/recommendations",
            "student",
            access.teacher_has_interest,
            lambda i: recommendations.recommend(i, 5, repo),
        )
        as_teacher(
            "lessons/{id}",
            "lesson",
            access.teacher_created,
            lambda i: reports.lesson_report(i, 30, now, repo),
        )
        as_teacher(
            "quizzes/{id}",
            "quiz",
            access.teacher_created,
            lambda i: reports.quiz_report(i, repo),
        )
        # A refusal asks every branch of the interest check: its worst case.
        for sampling in ("uniform", "by activity"):
            pairs = iter(list(zip(ids["teacher/any"], ids[f"student/{sampling}"], strict=True)) * 2)
            rows.append(
                (
                    "access: interest check, any teacher",
                    sampling,
                    measure(lambda p=pairs: access.teacher_has_interest(*next(p)), args.samples),  # type: ignore[misc]
                )
            )
        few = max(10, args.samples // 10)
        for name, call in (
            ("forum/trending?hours=24", lambda: reports.forum_trending(24, 10, now, repo)),
            ("forum/trending?hours=744", lambda: reports.forum_trending(744, 10, now, repo)),
            ("forum/contributors?days=7", lambda: reports.forum_contributors(7, 10, now, repo)),
            (
                "forum/contributors?days=92",
                lambda: reports.forum_contributors(92, 10, now, repo),
            ),
            (
                "activity 24 h by hour",
                lambda: reports.activity_report(None, None, "hour", now, repo),
            ),
            (
                "activity 62 days by hour",
                lambda: reports.activity_report(now - timedelta(days=62), now, "hour", now, repo),
            ),
            (
                "activity 1 day by minute",
                lambda: reports.activity_report(now - timedelta(days=1), now, "minute", now, repo),
            ),
            (
                "activity 120 days by day",
                lambda: reports.activity_report(now - timedelta(days=120), now, "day", now, repo),
            ),
        ):
            rows.append((name, "-", measure(call, few)))

    header = (
        f"{'endpoint':<32} {'sampling':<12} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8}"
    )
    lines = [header, "-" * len(header)]
    table = [
        "| endpoint | sampling | requests | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, sampling, timings in rows:
        p50, p95, p99 = (percentile(timings, share) for share in (0.5, 0.95, 0.99))
        lines.append(
            f"{name:<32} {sampling:<12} {len(timings):>5} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} "
            f"{max(timings):>8.1f}"
        )
        table.append(
            f"| `{name}` | {sampling} | {len(timings)} | {p50:.1f} | {p95:.1f} | {p99:.1f} | "
            f"{max(timings):.1f} |"
        )
    summary = f"{events:,} events in the ledger; {load_note or 'load time not recorded'}"
    print(summary)
    print("\n".join(lines))
    print(f"median of all p50s: {statistics.median(percentile(t, 0.5) for *_, t in rows):.1f} ms")
    if args.write_docs:
        stamp = f"Measured {now:%Y-%m-%d %H:%M} UTC: {summary}."
        text = replace_section(DOCS.read_text(), START, END, stamp + "\n\n" + "\n".join(table))
        if args.plans:
            text = replace_section(text, PLANS_START, PLANS_END, plans(args.dsn, ids, now))
        DOCS.write_text(text)
        print(f"wrote {DOCS}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return BENCH.run(bench, argv)


if __name__ == "__main__":
    raise SystemExit(main())
