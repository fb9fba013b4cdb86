import threading

import pytest
from sqlalchemy import text

from recsys import db, migrations
from recsys.errors import DatabaseUnreachableError


def test_upgrade_applies_each_migration_once(empty_database):
    first = migrations.upgrade(empty_database, "recsys")
    assert first and first[0].startswith("0001_")
    assert migrations.upgrade(empty_database, "recsys") == []
    assert migrations.current_version(empty_database, "recsys") == len(migrations.available_migrations())


def test_concurrent_upgrades_serialise(empty_database):
    results, errors = [], []

    def run():
        try:
            results.append(migrations.upgrade(empty_database, "recsys"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(len(r) for r in results)[:2] == [0, 0]
    with db.get_engine(empty_database, "recsys").connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM schema_migrations")).scalar()
    assert n == len(migrations.available_migrations())


def test_schema_name_is_quoted_not_formatted(empty_database):
    hostile = 'x"; DROP TABLE pg_class; --'
    migrations.upgrade(empty_database, hostile)
    with db.get_engine(empty_database, hostile).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM interactions")).scalar() == 0


def test_unreachable_database_names_host_and_port():
    with pytest.raises(DatabaseUnreachableError, match="host=127.0.0.1 port=1"):
        db.get_engine("postgresql+psycopg2://postgres@127.0.0.1:1/nope", "recsys")
