"""The live lists' asset URIs and the extra of a "went live" event (no Airflow, no database)."""

from datetime import date

from recsys import assets

NIGHT = date(2026, 1, 20)


def test_a_uri_names_the_rows_of_live_recommendations_for_one_model_or_alias():
    assert assets.live_uri("recsys", "mf_als") == "recsys://recsys/live/mf_als"
    assert assets.live_uri("recsys", "default") == "recsys://recsys/live/default"
    assert assets.live_uri("My Schema", "mf_als") == "recsys://My%20Schema/live/mf_als"
    assert assets.went_live_alias("recsys", "mf_als") == "recsys.went_live.recsys.mf_als"


def test_the_uri_passes_airflows_validation_unchanged():
    from airflow.sdk import Asset  # the one test here that needs Airflow: its URI sanitiser

    uri = assets.live_uri("recsys", "mf_als")
    assert Asset(uri=uri).uri == uri and Asset(uri=uri).name == uri


def test_the_deployment_reads_the_variables_settings_reads(monkeypatch):
    from recsys.config import Settings

    monkeypatch.delenv("RECSYS_SCHEMA", raising=False)
    monkeypatch.delenv("RECSYS_SERVING_ALIAS", raising=False)
    assert (assets.deployment_schema(), assets.deployment_serving_alias()) == (Settings().schema,
                                                                               Settings().serving_alias)
    monkeypatch.setenv("RECSYS_SCHEMA", "analytics")
    monkeypatch.setenv("RECSYS_SERVING_ALIAS", "")
    assert (assets.deployment_schema(), assets.deployment_serving_alias()) == ("analytics", "")
    assert Settings.from_env().serving_alias == ""


def test_only_publish_and_choose_move_live_lists():
    assert assets.lists_moved_by("publish", "mf_als", "default") == "mf_als"
    assert assets.lists_moved_by("choose", None, "default") == "default"
    assert assets.lists_moved_by("choose", None, "") is None
    assert {assets.lists_moved_by(stage, "mf_als", "default") for stage in ("train", "gate", "score")} == {None}


def test_a_publish_that_went_live_emits_its_figures_and_a_history_only_one_nothing():
    manifest = {"model_version": "mf_als@2026-01-20", "rows": 50, "users": 5, "live": True, "seconds": 0.1}
    assert assets.went_live_extra("publish", "mf_als", NIGHT, manifest) == {
        "model": "mf_als", "model_version": "mf_als@2026-01-20", "run_date": "2026-01-20", "live": True,
        "rows": 50, "users": 5}
    assert assets.went_live_extra("publish", "mf_als", NIGHT, {**manifest, "live": False}) is None


def test_an_hour_that_went_live_emits_its_lists_version_and_a_history_only_one_nothing():
    manifest = {"model": "hybrid", "model_version": "hybrid@2026-01-20T06", "base_version": "hybrid@2026-01-20",
                "base_lists": "hybrid@2026-01-20", "run_date": "2026-01-20", "hour_end": "2026-01-20T06:00:00+00:00",
                "new_items": 3, "users": 40, "users_changed": 7, "live": True, "seconds": 0.5}
    assert assets.lists_moved_by("fresh", "hybrid", "default") == "hybrid"
    assert assets.went_live_extra("fresh", "hybrid", NIGHT, manifest) == {
        "model": "hybrid", "model_version": "hybrid@2026-01-20T06", "base_version": "hybrid@2026-01-20",
        "run_date": "2026-01-20", "hour_end": "2026-01-20T06:00:00+00:00", "live": True, "users": 40,
        "new_items": 3}
    assert assets.went_live_extra("fresh", "hybrid", NIGHT, {**manifest, "live": False}) is None


def test_choose_emits_only_when_the_alias_moved_to_another_version():
    choice = {"alias": "default", "run_date": NIGHT, "model": "mf_als", "model_version": "mf_als@2026-01-20",
              "moved": True, "reason": "mf_als ...", "figures": {}, "served_before": "mf_als@2026-01-19"}
    assert assets.went_live_extra("choose", None, NIGHT, choice) == {
        "alias": "default", "model": "mf_als", "model_version": "mf_als@2026-01-20",
        "served_before": "mf_als@2026-01-19", "run_date": "2026-01-20", "live": True, "reason": "mf_als ..."}
    assert assets.went_live_extra("choose", None, NIGHT, {**choice, "served_before": None})["served_before"] is None
    assert assets.went_live_extra("choose", None, NIGHT, {**choice, "moved": False}) is None  # a backfill
    # the gate kept yesterday's version: the alias points at it for tonight, but serves the same lists
    assert assets.went_live_extra("choose", None, NIGHT, {**choice, "served_before": "mf_als@2026-01-20"}) is None
    # RECSYS_SERVING_ALIAS empty: the step returns no choice
    assert assets.went_live_extra("choose", None, NIGHT, {"alias": None, "reason": "off"}) is None
