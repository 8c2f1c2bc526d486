"""scripts/load_dataset.py: the 10 M benchmark's loader, run small into a scratch database."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from shared.repositories.postgres.tables import LESSON_PROGRESS, Merge, merge_rows
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
        # The merged table is the fold of its history by the persist path's rules.
        spec = LESSON_PROGRESS
        with psycopg.connect(dsn, row_factory=dict_row) as conn:
            history = conn.execute("SELECT * FROM lesson_progress_events").fetchall()
            merged = conn.execute("SELECT * FROM lesson_progress").fetchall()
        folded = merge_rows(spec, history)
        assert len(merged) == len(folded)
        for row in merged:
            expected = folded[tuple(row[name] for name in spec.key)]
            for name in spec.columns:
                if spec.rules.get(name) is Merge.UNION:
                    assert set(row[name]) == set(expected[name]), name
                else:
                    assert row[name] == expected[name], name
