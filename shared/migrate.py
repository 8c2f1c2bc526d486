"""Apply the numbered SQL migrations in ``sql/`` to a PostgreSQL database.

``python -m shared.migrate [--dsn DSN]`` creates the database when it is
missing, then applies every file not yet recorded in ``schema_migrations``,
in order, each in its own transaction.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

# Session-level advisory lock serialising concurrent runs (two hosts starting
# at once). Any constant works as long as every run uses the same one.
MIGRATION_LOCK_KEY = 0x6163_7469_7669_7479  # "activity"

_FILE_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

_CREATE_MIGRATIONS_TABLE = b"""
CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The migrations on disk and the database disagree."""


@dataclass(frozen=True)
class Migration:
    name: str
    body: bytes

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def load_migrations(directory: Path = SQL_DIR) -> list[Migration]:
    """The migration files of ``directory``, in the order they apply."""
    migrations: list[Migration] = []
    numbers: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNN_snake_case.sql")
        number = match.group(1)
        if number in numbers:
            raise MigrationError(f"{path.name} and {numbers[number]} share the number {number}")
        numbers[number] = path.name
        migrations.append(Migration(path.name, path.read_bytes()))
    return migrations


def migrate(dsn: str, directory: Path = SQL_DIR) -> list[str]:
    """Apply the pending migrations of ``directory``; return the names applied."""
    migrations = load_migrations(directory)
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(_CREATE_MIGRATIONS_TABLE)
            rows = conn.execute("SELECT name, checksum FROM schema_migrations").fetchall()
            applied: dict[str, str] = dict(rows)
            # Check every applied file before applying anything: an edited
            # migration means the database and the code have drifted apart.
            for migration in migrations:
                recorded = applied.get(migration.name)
                if recorded is not None and recorded != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} was changed after it was applied "
                        f"(checksum {recorded[:12]} in the database, "
                        f"{migration.checksum[:12]} on disk); add a new migration instead"
                    )
            for migration in migrations:
                if migration.name in applied:
                    continue
                with conn.transaction():
                    # No parameters: psycopg sends the file as one simple query,
                    # so it may hold several statements.
                    conn.execute(migration.body)
                    conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                        (migration.name, migration.checksum),
                    )
                applied_now.append(migration.name)
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def ensure_database(dsn: str) -> bool:
    """Create the database ``dsn`` names unless it exists; True when created."""
    params = conninfo_to_dict(dsn)
    name = params.get("dbname")
    if not name:
        raise MigrationError("the DSN names no database (dbname)")
    admin_dsn = make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
        except psycopg.errors.DuplicateDatabase:
            return False  # another run created it in the meantime
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.migrate", description=__doc__)
    parser.add_argument("--dsn", help="libpq connection string (default: POSTGRES_DSN)")
    args = parser.parse_args(argv)
    dsn: str = args.dsn
    if not dsn:
        from shared.settings import get_settings

        dsn = get_settings().postgres_dsn
    try:
        if ensure_database(dsn):
            print(f"created database {conninfo_to_dict(dsn)['dbname']}")
        applied = migrate(dsn)
    except (MigrationError, psycopg.Error) as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    for name in applied:
        print(f"applied {name}")
    if not applied:
        print("schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
