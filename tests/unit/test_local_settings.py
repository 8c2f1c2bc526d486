"""make settings gives each checkout its own names, so two can share the services."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.local_settings import SAMPLE, checkout_suffix, with_own_names


def test_two_checkouts_get_different_names_and_one_checkout_always_the_same() -> None:
    values = json.loads(SAMPLE.read_text())["Values"]
    mine = with_own_names(values, checkout_suffix(Path("/home/a/activity")))
    again = with_own_names(values, checkout_suffix(Path("/home/a/activity")))
    theirs = with_own_names(values, checkout_suffix(Path("/home/b/activity")))
    assert mine == again
    shared = ("PERSIST_QUEUE", "ARCHIVE_QUEUE", "REALTIME_QUEUE", "PAYLOAD_CONTAINER")
    for name in (*shared, "ARCHIVE_TABLE_PREFIX", "REDIS_PREFIX", "POSTGRES_DSN"):
        assert mine[name] != theirs[name], name
        assert mine[name] != values[name], name
    suffix = checkout_suffix(Path("/home/a/activity"))
    assert mine["PERSIST_QUEUE"] == f"activity-{suffix}-persist"
    assert mine["POSTGRES_DSN"].endswith(f"/activity_{suffix}")
    assert mine["REDIS_PREFIX"] == f"activity:{suffix}:"
    assert mine["ARCHIVE_TABLE_PREFIX"].isalnum()  # Table names: letters and digits
    assert {k: v for k, v in mine.items() if v == values[k]} == {
        k: values[k]
        for k in values
        if k not in (*shared, "ARCHIVE_TABLE_PREFIX", "REDIS_PREFIX", "POSTGRES_DSN")
    }
