"""The DAG and `recsys run` follow one description of the night (recsys.night): the same
graph, for every selection of models."""

from itertools import combinations
from pathlib import Path

from recsys import catalogue
from recsys.night import night_steps

REPO = Path(__file__).resolve().parents[2]


def _selections():
    for n in range(len(catalogue.MODELS) + 1):
        yield from combinations(catalogue.MODELS, n)


def test_the_dag_is_the_night_description_for_every_selection_of_models(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["recsys_nightly"]
    dag_edges = {(up, task.task_id) for task in dag.tasks for up in task.upstream_task_ids}
    full = night_steps(catalogue.MODELS)
    assert set(dag.task_ids) == {step.id for step in full}
    for selection in _selections():
        steps = night_steps(selection)
        ids = {step.id for step in steps}
        described = {(up, step.id) for step in steps for up in step.upstream}
        # the DAG holds every model; a run's graph is the part of it that the run's models own
        assert {(a, b) for a, b in dag_edges if a in ids and b in ids} == described, [m.name for m in selection]
    for step in full:
        task = dag.get_task(step.id)
        assert str(getattr(task.trigger_rule, "value", task.trigger_rule)) == step.trigger_rule, step.id
        assert (task.pool == "recsys_training") == step.heavy, step.id
        assert task.doc_md == step.doc, step.id
    # every gate waits for the night's data health, so a held or failed check publishes nothing
    gates = [t for t in dag.tasks if t.task_id.endswith(".gate")]
    assert gates and all("health" in t.upstream_task_ids for t in gates)
    # the mapped score is the only task Airflow expands; the plan comes from its gate
    mapped = {t.task_id for t in dag.tasks if t.task_id.endswith(".score") and hasattr(t, "expand_input")}
    assert mapped == {s.id for s in full if s.mapped}
