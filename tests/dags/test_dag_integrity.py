"""DAG files parse fast, without side effects: no heavy imports, no database access."""

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
        "heavy = [m for m in ('torch', 'pandas', 'sklearn', 'scipy', 'recsys') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        "dag = bag.dags['recsys_nightly']\n"
        "print('TASKS', sorted(dag.task_ids))\n"
        "assert all(t.retries >= 2 for t in dag.tasks)\n"
        "assert all(t.doc_md for t in dag.tasks), [t.task_id for t in dag.tasks if not t.doc_md]\n"
        "print('POOLS', sorted({t.task_id: t.pool for t in dag.tasks}.items()))\n"
    )
    # a fresh interpreter, so modules imported by other tests do not hide a heavy import
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    heavy_line = next(l for l in out.stdout.splitlines() if l.startswith("HEAVY"))
    assert heavy_line == "HEAVY []", heavy_line
    assert ("['evaluate', 'extract', 'gate', 'ope_rl', 'publish', 'publish_rl', 'retention', 'score', 'score_rl',"
            " 'train', 'train_rl']") in out.stdout
    assert "('train', 'recsys_training')" in out.stdout and "('evaluate', 'recsys_training')" in out.stdout


def test_params_refuse_unknown_models_and_out_of_range_values(airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.param import ParamsDict

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["recsys_nightly"]
    params = ParamsDict(dag.params)
    params.validate()  # the defaults are valid
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
