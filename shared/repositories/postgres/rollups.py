"""The roll-ups' writes: a claimed Redis bucket's counts into activity_rollups, once."""

from __future__ import annotations

from collections.abc import Sequence

from shared.models.rollups import RollupRow
from shared.repositories.postgres.pool import PooledRepository


class RollupWrites(PooledRepository):
    """Commits claimed roll-up buckets (the claim id makes a commit happen once)."""

    def commit_rollup(self, claim: str, rows: Sequence[RollupRow]) -> bool:
        """Add one claimed bucket's counts, once: False when the claim was committed before."""
        with self._pool.connection() as conn, conn.transaction():
            first = conn.execute(
                "INSERT INTO rollup_claims (claim) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1",
                (claim,),
            ).fetchone()
            if first is None:
                return False
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO activity_rollups "
                    "(bucket_start, bucket_seconds, metric, dimension, value) "
                    "VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (bucket_start, bucket_seconds, metric, dimension) "
                    "DO UPDATE SET value = activity_rollups.value + EXCLUDED.value",
                    [
                        (r.bucket_start, r.bucket_seconds, r.metric, r.dimension, r.value)
                        for r in rows
                    ],
                )
        return True
