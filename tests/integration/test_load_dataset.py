"""scripts/load_dataset.py: the 10 M benchmark's loader, run small into a scratch database."""

from __future__ import annotations

from tests.conftest import TestRun, scratch_database
from tests.integration.conftest import rows

TYPE_TABLES = {
    "lesson_progress": "lesson_progress_events",
    "quiz_attempt": "quiz_attempts",
    "forum_activity": "forum_activity",
    "content_activity": "content_activity",
    "feedback": "feedback",
}


def test_the_loader_fills_every_table_consistently(test_run: TestRun) -> None:
    from scripts import load_dataset

    with scratch_database(f"test_load_{test_run.run_id}") as dsn:
        assert load_dataset.main(["--events", "6000", "--dsn", dsn, "--days", "20"]) == 0

        assert rows(dsn, "SELECT count(*) FROM event_ledger") == [(6000,)]
        by_type = dict(rows(dsn, "SELECT type, count(*) FROM event_ledger GROUP BY type"))
        for kind, table in TYPE_TABLES.items():
            assert rows(dsn, f"SELECT count(*) FROM {table}") == [(by_type[kind],)], table
        # Every index rebuilt over every partition, none left invalid.
        assert rows(dsn, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]
        assert rows(dsn, "SELECT sum(value) FROM activity_rollups WHERE metric = 'events'") == [
            (6000,)
        ]
        # The summaries the triggers keep (or the loader rebuilt) are filled.
        totals = "SELECT * FROM activity_event_totals ORDER BY unit, bucket_start, dimension"
        loaded = rows(dsn, totals)
        rows(dsn, "SELECT activity_event_totals_rebuild()")
        assert rows(dsn, totals) == loaded
        for table in ("lesson_daily_totals", "forum_contributions", "quiz_score_counts"):
            assert rows(dsn, f"SELECT count(*) > 0 FROM {table}") == [(True,)], table
