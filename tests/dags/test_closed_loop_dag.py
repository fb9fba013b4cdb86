"""recsys_closed_loop under real Airflow: simulated days and nightly retraining, alternating, and the same
rows as the CLI's closed loop for the same seed."""

import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.dev import devdb
from recsys.db import migrations

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

CONF = {"days": 3, "users": 200, "items": 50, "seed": 11,
        "arms": ["random", "popularity", "mf_als", "rl_reinforce"]}
SNAPSHOT = {
    "interactions": "SELECT event_time, user_id, item_id, event_type, value, session_id, model_version, propensity,"
                    " source FROM interactions ORDER BY source, event_time, user_id, item_id, event_type",
    "sim_user_days": "SELECT * FROM sim_user_days ORDER BY sim_source, day, user_id",
}


def _rows(url, schema, statement):
    with db.get_engine(url, schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


@pytest.fixture
def fast_nights(monkeypatch, tmp_path):
    # small, single-threaded fits: the nights are quick and give the same models on both paths
    for name, value in {"RECSYS_RL_EPOCHS": "2", "RECSYS_ALS_SEARCH": "0", "RECSYS_NUM_THREADS": "1",
                        "RECSYS_RL_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def cli_database(pg_admin_url):
    """A second migrated database, for the CLI's run of the same simulation."""
    name = f"recsys_test_{uuid.uuid4().hex[:12]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    try:
        migrations.upgrade(url, "recsys")
        yield url
    finally:
        db.dispose_engines()
        devdb.drop_database(pg_admin_url, name)


def test_days_and_nights_alternate_and_match_the_cli(airflow_db, settings, fast_nights, cli_database, monkeypatch,
                                                     tmp_path, capsys):
    from airflow.dag_processing.dagbag import DagBag

    from recsys import cli

    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(settings.artifact_dir))
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["recsys_closed_loop"]
    run = dag.test(logical_date=datetime(2026, 3, 1, tzinfo=timezone.utc), run_conf=CONF)
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    ran = {t: s for t, s in states.items() if t == "setup" or t < "day_03"}
    assert set(ran.values()) == {"success"} and len(ran) == 7, ran
    assert {s for t, s in states.items() if t not in ran} == {"skipped"}, states
    # the tasks ran in order: each day after the previous night, each night after its day
    ti = {t.task_id: t for t in run.get_task_instances()}
    order = ["setup"] + [f"day_0{d}.{s}" for d in range(3) for s in ("simulate", "nightly")]
    assert all(ti[a].end_date <= ti[b].start_date for a, b in zip(order, order[1:])), \
        [(t, ti[t].start_date, ti[t].end_date) for t in order]

    url, schema = settings.database_url, settings.schema
    # every day's impressions carry a propensity and the version that served them: day 0 the
    # bootstrap lists, day d the models the night after day d - 1 published (as of 2026-01-0<d+1>)
    served = _rows(url, schema, "SELECT source, model_version, count(*), bool_and(propensity > 0 AND propensity <= 1)"
                                " FROM interactions WHERE event_type = 'impression' GROUP BY 1, 2")
    assert all(ok for *_, ok in served)
    by_day = {}
    for source, version, _, _ in served:
        by_day.setdefault(source, set()).add(version)
    assert by_day == {
        "closed_loop:seed=11:day=2026-01-01": {"random@sim", "popularity@sim", "mf_als@bootstrap",
                                               "rl_reinforce@bootstrap"},
        "closed_loop:seed=11:day=2026-01-02": {"random@sim", "popularity@sim", "mf_als@2026-01-02",
                                               "rl_reinforce@2026-01-02"},
        "closed_loop:seed=11:day=2026-01-03": {"random@sim", "popularity@sim", "mf_als@2026-01-03",
                                               "rl_reinforce@2026-01-03"},
    }
    assert _rows(url, schema, "SELECT count(*) FROM interactions WHERE event_type <> 'impression'"
                              " AND (propensity IS NOT NULL OR model_version IS NOT NULL)") == [(0,)]
    # a night after each day trained both models; the last night's are live with lists for users
    runs = _rows(url, schema, "SELECT run_date::text, model FROM model_runs ORDER BY 1, 2")
    assert runs == [(d, m) for d in ("2026-01-02", "2026-01-03", "2026-01-04") for m in ("mf_als", "rl_reinforce")]
    live = dict(_rows(url, schema, "SELECT model, model_version FROM live_models"))
    assert live == {"mf_als": "mf_als@2026-01-04", "rl_reinforce": "rl_reinforce@2026-01-04"}
    lists = dict(_rows(url, schema, "SELECT model_version, count(DISTINCT user_id) FROM live_recommendations"
                                    " GROUP BY 1"))
    assert set(lists) == set(live.values()) and min(lists.values()) > 0, lists
    # ground truth goes to sim_user_days (and sim_items) only, never to the log
    assert _rows(url, schema, "SELECT day::text, count(*) FROM sim_user_days GROUP BY 1 ORDER BY 1") and \
        [r[0] for r in _rows(url, schema, "SELECT DISTINCT day::text FROM sim_user_days ORDER BY 1")] == \
        ["2026-01-01", "2026-01-02", "2026-01-03"]
    cols = {r[0] for r in _rows(url, schema, "SELECT column_name FROM information_schema.columns"
                                             " WHERE table_schema = 'recsys' AND table_name = 'interactions'")}
    assert not cols & {"satisfaction", "return_prob", "churned", "quality", "appeal", "arm"}
    # small manifests through XCom, the last night's too (it also skipped the unused groups)
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = {x.task_id: XComModel.deserialize_value(x) for x in session.scalars(
            XComModel.get_many(run_id=run.run_id, key="return_value", dag_ids="recsys_closed_loop"))}
    assert [xcoms[f"day_0{d}.simulate"]["run_date"] for d in range(3)] == ["2026-01-02", "2026-01-03", "2026-01-04"]
    assert set(xcoms["day_02.nightly"]["trained"].values()) == {"mf_als@2026-01-04", "rl_reinforce@2026-01-04"}
    # the world went from task to task in one state file per day, under the artifact dir
    files = sorted(p.name for p in settings.artifact_dir.glob("closed_loop/*/state_day*.npz"))
    assert files == [f"state_day00{d}.npz" for d in range(4)], files

    # the CLI's in-memory loop, same seed and sizes, on its own database: the same rows
    monkeypatch.setenv("RECSYS_DATABASE_URL", cli_database)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(tmp_path / "cli_artifacts"))
    assert cli.main(["simulate", "--closed-loop", "--days", "3", "--users", "200", "--items", "50", "--seed", "11",
                     "--arms", ",".join(CONF["arms"])]) == 0
    capsys.readouterr()
    for name, query in SNAPSHOT.items():
        dag_rows, cli_rows = _rows(url, schema, query), _rows(cli_database, schema, query)
        assert len(dag_rows) == len(cli_rows) > 0, name
        assert dag_rows == cli_rows, name
