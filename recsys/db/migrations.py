"""Versioned schema migrations: `sql/migrations/NNNN_name.sql`, applied in order.

All pending files run in one transaction under an advisory lock, so two
processes upgrading at once serialise and the second one finds nothing to do.
Each applied file is recorded in `schema_migrations` with its checksum.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg2.errors
from psycopg2 import sql

from recsys.db.engine import SQL_DIR, raw_connection

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = SQL_DIR / "migrations"
_LOCK_KEY = 0x7265637379730001  # arbitrary constant: "recsys" + 1
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migration files sorted by version; rejects malformed names and duplicate versions."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} must be named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations share version {version}: {found[version].path.name}, {path.name}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def upgrade(database_url: str, schema: str, target: int | None = None) -> list[str]:
    """Apply pending migrations to `schema` (up to version `target`, default all); returns the names applied."""
    applied_now: list[str] = []
    with raw_connection(database_url, schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cur.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(schema)))
        cur.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        cur.execute("SELECT version, checksum FROM schema_migrations")
        done = dict(cur.fetchall())
        for migration in available_migrations():
            if target is not None and migration.version > target:
                break
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    logger.warning("migration %s changed after it was applied", migration.path.name)
                continue
            logger.info("applying migration %s to schema %s", migration.path.name, schema)
            _apply(cur, migration)
            cur.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied_now.append(migration.path.name)
    return applied_now


def _apply(cur, migration: Migration) -> None:  # noqa: ANN001
    """Run one migration's SQL. Roles are cluster-wide: two databases migrated at once (two
    benchmark seeds, two test workers) can both see `recsys_reader` missing and both create it;
    the second then fails on pg_authid's unique index although its check was right. That one
    failure is retried once, from a savepoint, when the role is there for everyone to see."""
    cur.execute("SAVEPOINT recsys_migration")
    try:
        cur.execute(migration.path.read_text())
    except psycopg2.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != "pg_authid_rolname_index":
            raise
        cur.execute("ROLLBACK TO SAVEPOINT recsys_migration")
        cur.execute(migration.path.read_text())
    cur.execute("RELEASE SAVEPOINT recsys_migration")


def current_version(database_url: str, schema: str) -> int | None:
    """Highest applied migration version, or None when the schema was never upgraded."""
    with raw_connection(database_url, schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f'"{schema}".schema_migrations',))
        if cur.fetchone()[0] is None:
            return None
        cur.execute(sql.SQL("SELECT max(version) FROM {}.schema_migrations").format(sql.Identifier(schema)))
        return cur.fetchone()[0]
