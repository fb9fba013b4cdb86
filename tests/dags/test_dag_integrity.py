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
    )
    # a fresh interpreter, so modules imported by other tests do not hide a heavy import
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    heavy_line = next(l for l in out.stdout.splitlines() if l.startswith("HEAVY"))
    assert heavy_line == "HEAVY []", heavy_line
    assert "['evaluate', 'extract', 'publish', 'retention', 'train']" in out.stdout
