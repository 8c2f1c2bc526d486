"""Roll-up: move closed Redis counter buckets into ``activity_rollups``.

Exactly once, whatever crashes (the argument is in docs/realtime.md):
1. claim: a Lua script renames each closed bucket to a claim key, atomically;
2. read the claim key (never written again);
3. commit its counts in one PostgreSQL transaction that also inserts the claim
   id into ``rollup_claims`` - a claim already there means it was committed;
4. release: delete the claim key only after that commit.
A crash before 3 leaves the claim for the next run; a crash between 3 and 4
makes the next run find the claim id committed and only release it. Two
roll-ups at once may read the same claim, but only one can insert its id.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from shared import telemetry
from shared.models.rollups import RollupRow
from shared.repositories.realtime import RealtimeRepository

# A bucket is rolled up this long after it closes, so that requests being
# answered as it closed have finished counting into it.
GRACE_SECONDS = 5


class RollupStore(Protocol):
    def commit_rollup(self, claim: str, rows: list[RollupRow]) -> bool:
        """Add the rows and record the claim, in one transaction; False if already done."""
        ...


@dataclass
class RollupResult:
    claims: int = 0
    committed: int = 0
    rows: int = 0


def aggregate(claim: str, counters: dict[str, str]) -> list[RollupRow]:
    """The rows of one claimed bucket: ``{seconds}:{start}:{suffix}`` -> counts."""
    seconds, start, _ = claim.split(":", 2)
    bucket_start = datetime.fromtimestamp(int(start), UTC)
    totals: Counter[tuple[str, str]] = Counter()
    for field, value in counters.items():
        if field.startswith("las|"):  # one field per (lesson, student): distinct students
            _, lesson, _student = field.split("|", 2)
            totals["lesson_active_students", lesson] += 1
        else:
            metric, dimension = field.split("|", 1)
            totals[metric, dimension] += int(value)
    return [
        RollupRow(bucket_start, int(seconds), metric, dimension, value)
        for (metric, dimension), value in sorted(totals.items())
    ]


def run_rollup(
    realtime: RealtimeRepository,
    store: RollupStore,
    now: datetime | None = None,
    checkpoint: Callable[[str], None] = lambda stage: None,
) -> RollupResult:
    """Roll every closed bucket up; ``checkpoint`` lets tests crash between steps."""
    moment = now or datetime.now(UTC)
    due_before = int(moment.timestamp()) - GRACE_SECONDS
    result = RollupResult()
    for claim in realtime.claim_due_buckets(due_before, uuid.uuid4().hex):
        result.claims += 1
        checkpoint("claimed")
        rows = aggregate(claim, realtime.read_claim(claim))
        checkpoint("read")
        if store.commit_rollup(claim, rows):
            result.committed += 1
            result.rows += len(rows)
            seconds, start, _ = claim.split(":", 2)
            closed = datetime.fromtimestamp(int(start) + int(seconds), UTC)
            telemetry.rollup_delay.record(max(0.0, (moment - closed).total_seconds()))
        checkpoint("committed")
        realtime.release_claim(claim)
    return result
