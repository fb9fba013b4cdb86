"""The night's description (recsys.night) and how `run_night` walks it: the order, Airflow's
trigger rules, and a failing model branch that leaves the others and retention running."""

from __future__ import annotations

from datetime import date
from itertools import combinations

import pytest
from sqlalchemy import text

from recsys import catalogue, pipeline
from recsys.db import engine as db
from recsys.errors import ConfigurationError, EmptyWindowError
from recsys.interval import DataInterval
from recsys.night import night_steps

LAST_ML_DAY = date(1998, 4, 23)


def _selections():
    for n in range(1, len(catalogue.MODELS) + 1):
        yield from combinations([m.name for m in catalogue.MODELS], n)


def _fake_steps(monkeypatch, fail=(), skip=()):
    ran: list[str] = []

    def fake_run_step(step, night, inputs):
        ran.append(step.id)
        missing = [i for i in step.inputs if i.rsplit(".", 1)[-1] not in inputs and not step.mapped]
        assert not missing, (step.id, missing)
        if step.id in fail:
            raise RuntimeError(f"{step.id} broke")
        if step.id in skip:
            raise EmptyWindowError(f"{step.id}: nothing to do")
        return [{"shard": 0, "n_shards": 1}] if step.stage == "gate" else {"dataset_path": "d", "path": "p",
                                                                            "model_version": f"{step.model}@d"}

    monkeypatch.setattr(pipeline, "run_step", fake_run_step)
    monkeypatch.setattr("recsys.db.registry.record_failure", lambda *a, **k: "failed")
    return ran


def test_run_night_runs_the_described_steps_in_order_for_every_selection(monkeypatch, settings):
    for models in _selections():
        ran = _fake_steps(monkeypatch)
        report = pipeline.run_night(settings, DataInterval.for_date(LAST_ML_DAY), models=models)
        steps = night_steps(catalogue.select(models))
        assert ran == [s.id for s in steps], models
        assert set(report.states.values()) == {"success"}
        position = {step_id: i for i, step_id in enumerate(ran)}
        assert all(position[up] < position[s.id] for s in steps for up in s.upstream), models


def test_a_failing_branch_stops_only_what_reads_it(monkeypatch, settings):
    models = ("mf_als", "mf_bpr", "rl_reinforce")
    ran = _fake_steps(monkeypatch, fail={"mf_als.train"}, skip={"mf_bpr.gate"})
    report = pipeline.run_night(settings, DataInterval.for_date(LAST_ML_DAY), models=models,
                                raise_on_failure=False)
    states = report.states
    assert states["mf_als.train"] == "failed" and list(report.failures) == ["mf_als.train"]
    assert {states[f"mf_als.{s}"] for s in ("evaluate", "gate", "score", "publish")} == {"upstream_failed"}
    assert states["mf_bpr.gate"] == "skipped" and states["mf_bpr.score"] == states["mf_bpr.publish"] == "skipped"
    # RL waits for ALS's train whatever its outcome (all_done): it still trains and publishes
    assert states["rl_reinforce.publish"] == "success" and "rl_reinforce.train" in ran
    assert states["retention"] == states["ope_realised"] == "success"
    assert states["cleanup_artifacts"] == "success"  # all_done: after every publish, whatever its state
    assert report.skipped == "mf_bpr.gate: nothing to do"
    with pytest.raises(RuntimeError, match="mf_als.train broke"):  # the default re-raises, after the night ran
        _fake_steps(monkeypatch, fail={"mf_als.train"})
        pipeline.run_night(settings, DataInterval.for_date(LAST_ML_DAY), models=models)


def test_a_learned_models_gate_waits_for_the_baseline_evaluations_its_floor_reads(monkeypatch, settings):
    models = ("mf_als", "baseline_popular", "baseline_trending", "rl_reinforce")
    steps = {step.id: step for step in night_steps(catalogue.select(models))}
    gate = steps["mf_als.gate"]
    assert gate.after_unless_failed == ("baseline_popular.evaluate", "baseline_trending.evaluate")
    assert gate.trigger_rule == "none_failed"
    # RL's ranking hold-out is held to the same floor (where it has no off-policy estimate)
    assert steps["rl_reinforce.gate"].after_unless_failed == gate.after_unless_failed
    assert steps["rl_reinforce.gate"].inputs == ("rl_reinforce.train", "rl_reinforce.ope", "rl_reinforce.evaluate",
                                                 "health")
    # baselines are not held to a floor; without baselines nothing to wait for
    assert steps["baseline_popular.gate"].trigger_rule == "all_success"
    alone = {step.id: step for step in night_steps(catalogue.select(["mf_als"]))}
    assert alone["mf_als.gate"].trigger_rule == "all_success"

    ran = _fake_steps(monkeypatch, skip={"baseline_trending.evaluate"})
    report = pipeline.run_night(settings, DataInterval.for_date(LAST_ML_DAY), models=models)
    assert ran.index("baseline_popular.evaluate") < ran.index("mf_als.gate")
    assert report.states["mf_als.gate"] == report.states["mf_als.publish"] == "success"  # a skip holds nothing back

    _fake_steps(monkeypatch, fail={"baseline_popular.evaluate"})
    report = pipeline.run_night(settings, DataInterval.for_date(LAST_ML_DAY), models=models, raise_on_failure=False)
    # the floor is unknown: the learned model waits for another night, the other branches go on
    assert report.states["mf_als.gate"] == report.states["mf_als.publish"] == "upstream_failed"
    # RL's gate may judge it on its ranking hold-out, so it waits too; its own steps before the gate ran
    assert report.states["rl_reinforce.gate"] == "upstream_failed" and report.states["rl_reinforce.ope"] == "success"
    assert report.states["baseline_trending.publish"] == "success"

    _fake_steps(monkeypatch, skip={"mf_als.evaluate"})
    report = pipeline.run_night(settings, DataInterval.for_date(LAST_ML_DAY), models=models)
    assert report.states["mf_als.gate"] == "skipped"  # its own input skipped: it does not run


def test_a_failed_health_check_run_publishes_nothing_and_retention_still_runs(monkeypatch, settings):
    models = ("mf_als", "rl_reinforce")
    _fake_steps(monkeypatch, fail={"health"})
    report = pipeline.run_night(settings, DataInterval.for_date(LAST_ML_DAY), models=models, raise_on_failure=False)
    states = report.states
    assert states["mf_als.train"] == states["rl_reinforce.train"] == "success"  # training does not wait for it
    assert states["mf_als.gate"] == states["rl_reinforce.gate"] == "upstream_failed"
    assert states["mf_als.publish"] == states["rl_reinforce.publish"] == "upstream_failed"
    assert states["retention"] == "success" and list(report.failures) == ["health"]


def test_an_empty_extract_skips_every_model_and_runs_retention(monkeypatch, settings):
    _fake_steps(monkeypatch, skip={"extract"})
    report = pipeline.run_night(settings, DataInterval.for_date(LAST_ML_DAY), models=catalogue.names())
    model_steps = {s: st for s, st in report.states.items() if "." in s}
    assert set(model_steps.values()) == {"skipped"}, model_steps
    assert report.states["retention"] == "success"


def test_unknown_models_are_refused_naming_the_catalogue(settings):
    with pytest.raises(ConfigurationError, match="unknown model 'nope'.*mf_als"):
        pipeline.run_night(settings, DataInterval.for_date(LAST_ML_DAY), models=["nope"])


def test_catalogue_resolves_aliases_and_keeps_catalogue_order():
    assert [s.name for s in catalogue.select(["rl", "mf"])] == ["mf_als", "rl_reinforce"]
    assert catalogue.parse_list("bpr, mf_als,") == ["mf_bpr", "mf_als"]
    assert catalogue.kind_of("rl_cql") == "rl" and catalogue.kind_of("gone_model") == "unknown"
    with pytest.raises(ConfigurationError, match="lower-case"):
        catalogue.ModelSpec(name="Bad-Name", kind="mf", summary="", train="x:y")


def test_a_log_without_sessions_or_propensities_runs_rl_without_a_crash(movielens_settings, monkeypatch,
                                                                        capsys, caplog):
    """The case found on a real news log: a source view without the optional `session_id` and
    `propensity` columns. They read as NULL (recsys.source); on MovieLens, which logs no
    impressions, the RL branch is then skipped with its reason, and MF and retention publish."""
    from recsys import cli

    s = movielens_settings
    with db.raw_connection(s.database_url, s.schema) as conn, conn.cursor() as cur:
        cur.execute("CREATE VIEW log_without_sessions AS SELECT event_time, user_id, item_id, event_type, value"
                    " FROM interactions")
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(s.artifact_dir))
    monkeypatch.setenv("RECSYS_SOURCE_TABLE", "log_without_sessions")
    monkeypatch.setenv("RECSYS_TRAIN_WINDOW_DAYS", "365")
    monkeypatch.setenv("RECSYS_ALS_SEARCH", "0")

    assert cli.main(["run", "--date", LAST_ML_DAY.isoformat(), "--extra-models", "rl_reinforce"]) == 0
    captured = capsys.readouterr()
    assert '"failed": {}' in captured.out and '"rl_reinforce.train"' in captured.out, captured.out
    assert "UndefinedColumn" not in caplog.text
    assert "log_without_sessions has no propensity column" in caplog.text
    with db.get_engine(s.database_url, s.schema).connect() as conn:
        runs = conn.execute(text("SELECT model_version, status FROM model_runs ORDER BY 1")).fetchall()
        retention = conn.execute(text("SELECT count(*) FROM retention WHERE cohort_date = '1998-04-22'")).scalar()
    assert ("mf_als@1998-04-23", "published") in runs and all(status != "failed" for _, status in runs)
    assert retention > 0
