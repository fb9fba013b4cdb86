"""DAG files parse fast, without side effects: no heavy imports, no database access."""

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_dag_parses_without_import_errors_or_heavy_modules(airflow_db):
    code = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "assert 'recsys_nightly' in bag.dags, list(bag.dags)\n"
        "heavy = [m for m in ('torch', 'pandas', 'sklearn', 'scipy', 'numpy')"
        " if m in sys.modules]  # Airflow itself loads sqlalchemy and psycopg2\n"
        "print('HEAVY', heavy)\n"
        "print('RECSYS', sorted(m for m in sys.modules if m.startswith('recsys')))\n"
        "dag = bag.dags['recsys_nightly']\n"
        "print('TASKS', sorted(dag.task_ids))\n"
        "assert all(t.retries >= 2 for t in dag.tasks)\n"
        "assert all(t.doc_md for t in dag.tasks), [t.task_id for t in dag.tasks if not t.doc_md]\n"
        "print('POOLS', sorted({t.task_id: t.pool for t in dag.tasks}.items()))\n"
        "print('OUTLETS', sorted((t.task_id, [o.name for o in t.outlets]) for t in dag.tasks if t.outlets))\n"
    )
    # a fresh interpreter, so modules imported by other tests do not hide a heavy import
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    heavy_line = next(l for l in out.stdout.splitlines() if l.startswith("HEAVY"))
    assert heavy_line == "HEAVY []", heavy_line
    # of the package, only the standard-library declarations of the catalogue and the night
    recsys_line = next(l for l in out.stdout.splitlines() if l.startswith("RECSYS"))
    assert recsys_line == "RECSYS ['recsys', 'recsys.assets', 'recsys.catalogue', 'recsys.deadline', 'recsys.errors', " \
                          "'recsys.night', 'recsys.spark']", \
        recsys_line
    for model in ("mf_als", "mf_bpr", "itemknn", "ease", "rl_reinforce", "rl_cql"):
        for stage in ("train", "gate", "score", "publish"):
            assert f"'{model}.{stage}'" in out.stdout
    for shared in ("extract", "health", "retention", "ope_realised"):
        assert f"'{shared}'" in out.stdout
    # every publish, and choose, declares the alias its "went live" events go through; no other task
    outlets = next(l for l in out.stdout.splitlines() if l.startswith("OUTLETS"))
    declared = dict(ast.literal_eval(outlets.removeprefix("OUTLETS ")))
    assert declared == {"choose": ["recsys.went_live.recsys.default"]} | {
        t: [f"recsys.went_live.recsys.{t.split('.')[0]}"] for t in declared if t.endswith(".publish")}, declared
    assert {t.split(".")[0] for t in declared} >= {"mf_als", "mf_bpr", "itemknn", "ease", "rl_reinforce", "rl_cql"}
    for training in ("mf_als.train", "mf_als.evaluate", "mf_bpr.train", "itemknn.train", "itemknn.evaluate",
                     "ease.train", "ease.evaluate", "rl_reinforce.train", "rl_cql.train"):
        assert f"('{training}', 'recsys_training')" in out.stdout


def test_the_deadline_is_set_from_the_settings_at_parse_time_without_importing_more(airflow_db):
    code = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "dag = bag.dags['recsys_nightly']\n"
        "[alert] = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]\n"
        "print('DEADLINE', type(alert.reference).__name__, alert.interval, alert.callback.path,"
        " sorted(alert.callback.kwargs.items()), type(alert.callback).__name__)\n"
        "print('RECSYS', sorted(m for m in sys.modules if m.startswith('recsys')))\n"
    )
    env = {**os.environ, "RECSYS_LISTS_LIVE_BY": "06:30", "RECSYS_LISTS_LIVE_TZ": "UTC"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    # the reference is the logical date (D-1 00:00 UTC of a scheduled night): 06:30 UTC on D is 30.5 hours on
    assert "DEADLINE DagRunLogicalDateDeadline 1 day, 6:30:00 recsys.deadline.lists_late " \
           "[('live_by', '06:30'), ('zone', 'UTC')] SyncCallback" in out.stdout, out.stdout
    assert "'recsys.airflow_support'" not in out.stdout and "'recsys.config'" not in out.stdout, out.stdout
    # unset: no deadline; a bad zone fails the parse naming the setting
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**env, "RECSYS_LISTS_LIVE_TZ": "Mars/Olympus"})
    assert bad.returncode != 0 and "RECSYS_LISTS_LIVE_TZ='Mars/Olympus'" in bad.stdout + bad.stderr


def test_params_refuse_unknown_models_and_out_of_range_values(airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.param import ParamsDict

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["recsys_nightly"]
    params = ParamsDict(dag.params)
    params.validate()  # the defaults are valid
    chosen = ParamsDict(dag.params)
    chosen["models"] = ["itemknn", "ease"]  # the item-item models are chosen like any other
    chosen.validate()
    for bad in ({"models": ["no_such_model"]}, {"k": 0}, {"score_shards": 65}, {"models": []}):
        candidate = ParamsDict(dag.params)
        key, value = next(iter(bad.items()))
        try:
            candidate[key] = value
            candidate.validate()
        except Exception as exc:  # ParamValidationError
            assert "valid" in str(exc).lower() or key in str(exc), exc
        else:
            raise AssertionError(f"{bad} was accepted")


def test_closed_loop_dag_alternates_days_and_nights_with_the_cli_defaults(airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.param import ParamsDict

    from recsys import cli

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["recsys_closed_loop"]
    assert dag.schedule is None and dag.max_active_runs == 1 and dag.doc_md
    max_days = dag.params.get_param("days").schema["maximum"]
    assert set(dag.task_ids) == {"setup"} | {f"day_{d:02d}.{t}" for d in range(max_days)
                                             for t in ("simulate", "nightly")}
    assert all(t.retries >= 2 and t.doc_md for t in dag.tasks)
    assert dag.get_task("day_00.nightly").pool == "recsys_training"
    # strictly sequential: a day waits for the previous night, a night for its day
    assert dag.get_task("day_00.simulate").upstream_task_ids == {"setup"}
    assert dag.get_task("day_01.simulate").upstream_task_ids == {"day_00.simulate", "day_00.nightly"}
    assert dag.get_task("day_01.nightly").upstream_task_ids == {"day_01.simulate"}
    # the defaults are the CLI's
    defaults = ParamsDict(dag.params)
    defaults.validate()
    sim = cli.build_parser().parse_args(["simulate", "--closed-loop"])
    assert (defaults["days"], defaults["users"], defaults["items"], defaults["seed"], defaults["explore"]) == \
        (sim.days, sim.users, sim.items, sim.seed, sim.explore)
    from recsys.sim.closed_loop import DEFAULT_ARMS

    assert defaults["start_date"] == sim.start.isoformat() and tuple(defaults["arms"]) == DEFAULT_ARMS
    assert defaults["gate"] is sim.gate and defaults["run_nightly"] is not sim.no_nightly
    for key, value in [("days", 0), ("days", max_days + 1), ("arms", ["no_such_arm"]), ("arms", []),
                       ("arms", ["random", "random"]), ("explore", 1.5), ("items", 10),
                       ("start_date", "01/02/2026")]:
        candidate = ParamsDict(dag.params)
        try:
            candidate[key] = value
            candidate.validate()
        except Exception as exc:  # ParamValidationError
            assert "valid" in str(exc).lower() or key in str(exc), exc
        else:
            raise AssertionError(f"{key}={value!r} was accepted")


def test_the_live_lists_refresh_dag_is_scheduled_on_every_live_lists_asset(airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AssetAny

    from recsys import catalogue

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    assert sorted(bag.dags) == ["recsys_closed_loop", "recsys_fresh_items", "recsys_live_lists_refresh", "recsys_nightly"]
    dag = bag.dags["recsys_live_lists_refresh"]
    # any one of them: each model's lists, and the serving alias's
    assert isinstance(dag.schedule, AssetAny)
    assert sorted(a.uri for a in dag.schedule.objects) == sorted(
        f"recsys://recsys/live/{name}" for name in ["default", *catalogue.names()])
    assert dag.task_ids == ["refresh"] and dag.max_active_runs == 1 and dag.doc_md and not dag.catchup
    assert all(t.retries >= 2 and t.doc_md for t in dag.tasks)
