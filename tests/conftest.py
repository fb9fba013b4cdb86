"""Shared fixtures: a real PostgreSQL, and a fresh database per test.

The server is the one on 127.0.0.1:5432 when it answers (or
`RECSYS_TEST_ADMIN_URL`); otherwise an embedded server is started in a
temporary directory and stopped at the end of the session. Every database the
suite uses is created here and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from recsys.db import engine as db
from recsys.dev import devdb
from recsys.db import migrations
from recsys.config import Settings
from eventdata import copy_events, movielens_frame

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("RECSYS_TEST_ADMIN_URL", devdb.LOCAL_ADMIN_URL)
    if devdb.reachable(url):
        return url
    data_dir = tmp_path_factory.mktemp("pgserver")
    return devdb.start_embedded(data_dir, keep_running=False)


@pytest.fixture
def empty_database(pg_admin_url: str) -> Iterator[str]:
    """URL of a new, empty database; dropped after the test."""
    name = f"recsys_test_{uuid.uuid4().hex[:12]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    try:
        yield url
    finally:
        db.dispose_engines()
        devdb.drop_database(pg_admin_url, name)


@pytest.fixture
def settings(empty_database: str, tmp_path: Path) -> Settings:
    """Settings on a migrated, empty test database with a temporary artifact dir."""
    s = Settings(database_url=empty_database, artifact_dir=tmp_path / "artifacts")
    migrations.upgrade(s.database_url, s.schema)
    return s


@pytest.fixture
def movielens_100k() -> Path:
    path = SHARED_DATASETS / "movielens-100k" / "u.data"
    if not path.exists():
        pytest.skip(f"shared dataset missing: {path}")
    return path


@pytest.fixture
def movielens_settings(settings: Settings, movielens_100k: Path) -> Settings:
    """Settings on a database holding MovieLens 100K as consume events, with a one-year window."""
    import dataclasses

    copy_events(settings, movielens_frame(movielens_100k), source="movielens:u.data")
    return dataclasses.replace(settings, train_window_days=365)
