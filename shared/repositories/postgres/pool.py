"""The PostgreSQL store's connections: one pool per repository class and DSN.

``PooledRepository`` owns a connection pool and what every repository over
this store shares: closing it (also as a context manager), ``ping`` and a
helper that runs one query and returns plain rows. ``shared_repository``
keeps one instance per class and configured DSN for the process, so each
repository class (the store's own, the reports', the access rules') has a
pool of its own and report scans never hold the connections writes need.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, LiteralString, Self, TypeVar, cast

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from shared.settings import get_settings

Row = dict[str, Any]


def ident_list(names: Iterable[str], prefix: str | None = None) -> sql.Composed:
    """``a, b, c`` (or ``p.a, p.b, p.c`` with a prefix) as quoted identifiers."""
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(name) for name in names)
    return sql.SQL(", ").join(sql.Identifier(prefix, name) for name in names)


class PooledRepository:
    """A repository over the PostgreSQL store: its own connection pool."""

    # Session settings for this repository's connections (libpq ``options``).
    SESSION_OPTIONS: str | None = None

    def __init__(
        self, dsn: str, *, min_size: int = 1, max_size: int = 5, timeout: float = 10.0
    ) -> None:
        # The pool connects in the background: a host starting while the
        # database is down still starts, and calls fail (and retry) until it is up.
        self._pool: ConnectionPool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True}
            | ({"options": self.SESSION_OPTIONS} if self.SESSION_OPTIONS else {}),
            check=ConnectionPool.check_connection,
            name="postgres",
            open=True,
        )

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def ping(self, timeout: float = 5.0) -> None:
        """Raise unless the database answers within ``timeout`` seconds."""
        with self._pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")

    def _all(self, query: LiteralString, params: Sequence[Any] | Mapping[str, Any]) -> list[Row]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall()


R = TypeVar("R", bound=PooledRepository)
_repositories: dict[tuple[type[PooledRepository], str], PooledRepository] = {}
_repositories_lock = threading.Lock()


def shared_repository(kind: type[R]) -> R:
    """The process-wide ``kind`` for the configured POSTGRES_DSN: one pool per class and DSN.

    The persist path and the reports (``ReportsRepository``) each get their
    own pool, so report scans never hold the connections writes need.
    """
    settings = get_settings()
    key = (kind, settings.postgres_dsn)
    with _repositories_lock:
        repository = _repositories.get(key)
        if repository is None:
            repository = _repositories[key] = kind(
                settings.postgres_dsn, timeout=settings.postgres_timeout_seconds
            )
        return cast(R, repository)  # keyed by its class
