"""The PostgreSQL store: one repository, its jobs in modules of their own.

The shape: each job is a small class over the shared pool
(``pool.PooledRepository``), and ``PostgresRepository`` composes them into
the one repository the app uses for this store, on one pool:

- ``pool``: connections (one pool per repository class and DSN),
  ``shared_repository``, ``ping``, closing;
- ``tables``: where each event type is stored, the merged tables' rules and
  ``merge_rows`` (the same fold in Python);
- ``persist``: the persist statement (one per queue message) and
  ``PersistWrites``;
- ``views``: ``ViewReads``, what the real-time views are rebuilt from;
- ``privacy``: ``PrivacyRecords``, erasure, export, disclosures and retention;
- ``rollups``: ``RollupWrites``, claimed roll-up buckets committed once.

Read-only repositories over the same store (``shared/repositories/reports.py``,
``shared/repositories/access.py``) derive from ``PooledRepository`` alone: a
pool of their own and no write path.
"""

from __future__ import annotations

from shared.repositories.postgres.persist import PersistWrites
from shared.repositories.postgres.pool import shared_repository
from shared.repositories.postgres.privacy import PrivacyRecords
from shared.repositories.postgres.rollups import RollupWrites
from shared.repositories.postgres.views import ViewReads


class PostgresRepository(PersistWrites, ViewReads, PrivacyRecords, RollupWrites):
    """The PostgreSQL store, over a connection pool: every job the app asks of it."""


def get_postgres() -> PostgresRepository:
    """The process-wide repository for the configured POSTGRES_DSN."""
    return shared_repository(PostgresRepository)


__all__ = ("PostgresRepository", "get_postgres")
