import threading

import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.db import migrations
from recsys.errors import DatabaseUnreachableError


def test_upgrade_applies_each_migration_once(empty_database):
    first = migrations.upgrade(empty_database, "recsys")
    assert first and first[0].startswith("0001_")
    assert migrations.upgrade(empty_database, "recsys") == []
    # the newest version, not the count: 0011 lands on this branch before 0010 (another branch) does
    assert migrations.current_version(empty_database, "recsys") == migrations.available_migrations()[-1].version


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


def test_0005_converts_published_rows_to_lists_and_keeps_history_and_the_live_view(empty_database):
    """Lists published under 0004's one-row-per-recommendation layout read the same after 0005."""
    migrations.upgrade(empty_database, "recsys", target=4)
    engine = db.get_engine(empty_database, "recsys")
    versions = {"mf_als@2026-01-01": "20260101", "mf_als@2026-01-02": "20260102"}
    with engine.begin() as conn:
        for version, day in versions.items():
            conn.execute(text(
                "INSERT INTO model_runs (model, model_kind, model_version, run_date, data_interval_start,"
                " data_interval_end, train_window_start, status) VALUES ('mf_als', 'mf', :v, :d, :d, :d, :d,"
                " 'published')"), {"v": version, "d": f"{day[:4]}-{day[4:6]}-{day[6:]}"})
            conn.execute(text(f"CREATE TABLE recommendations_mf_als_{day} PARTITION OF recommendations"
                              " FOR VALUES IN (:v)".replace(":v", f"'{version}'")))
            # ranks inserted out of order: the arrays must come out in rank order
            conn.execute(text(
                "INSERT INTO recommendations SELECT 'mf_als', :v, CAST(:d AS date), u, r, u * 100 + r + :off, 1.0 / r"
                " FROM generate_series(1, 3) u, generate_series(3, 1, -1) r"),
                {"v": version, "d": f"{day[:4]}-{day[4:6]}-{day[6:]}", "off": int(day[-1])})
        conn.execute(text("INSERT INTO live_models VALUES ('mf_als', 'mf_als@2026-01-02', '2026-01-02')"))
        conn.execute(text("CREATE OR REPLACE VIEW live_recommendations AS SELECT model, model_version, run_date,"
                          " user_id, rank, item_id, score FROM recommendations_mf_als_20260102"))
        before_all = conn.execute(text("SELECT * FROM recommendations ORDER BY 2, 4, 5")).fetchall()
        before_live = conn.execute(text("SELECT * FROM live_recommendations ORDER BY 4, 5")).fetchall()

    # 0006 then redefines both views over the converted tables, adding the key columns
    assert migrations.upgrade(empty_database, "recsys") == ["0005_recommendation_lists.sql",
                                                           "0006_external_keys_and_availability.sql",
                                                           "0007_mind_impressions.sql",
                                                           "0008_retention_start_date.sql",
                                                           "0009_serving_aliases.sql",
                                                           "0010_live_lists_snapshot.sql",
                                                           "0011_data_health.sql",
                                                           "0012_item_vectors.sql",
                                                           "0013_eval_metrics_impressions.sql",
                                                           "0014_fresh_lists.sql"]
    columns = "model, model_version, run_date, user_id, rank, item_id, score"
    with engine.begin() as conn:
        assert conn.execute(text(f"SELECT {columns} FROM recommendations ORDER BY 2, 4, 5")).fetchall() == before_all
        assert conn.execute(text(f"SELECT {columns} FROM live_recommendations ORDER BY 4, 5")).fetchall() == before_live
        # 0010's snapshot starts with the live rows there are
        assert conn.execute(text(f"SELECT {columns} FROM live_lists_snapshot ORDER BY 4, 5")).fetchall() == before_live
        assert conn.execute(text("SELECT bool_and(user_key = user_id::text AND item_key = item_id::text)"
                                 " FROM live_recommendations")).scalar()
        assert conn.execute(text("SELECT item_ids FROM recommendations_mf_als_20260102 WHERE user_id = 2"
                                 )).fetchall() == [([203, 204, 205],)]
        assert sorted(r[0] for r in conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'recommendation_lists'::regclass"))) == [
            "recommendations_mf_als_20260101", "recommendations_mf_als_20260102"]
