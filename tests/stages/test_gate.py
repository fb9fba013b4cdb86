"""Champion/challenger gate decisions on the hold-out ranking metric, recorded in model_runs.

Each test writes what the evaluate stage writes for a version: its eval_metrics means and the
per-user figures beside its model file (recsys.holdout_users), with values built so that the
right verdict is known, then lets the gate decide on the real database.
"""

import dataclasses
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import text

from recsys import holdout_users
from recsys.db import engine as db
from recsys.db.registry import model_version, register_trained
from recsys.metrics.paired import paired_bootstrap
from recsys.stages import publish
from recsys.stages.gate import PublishRejected, decide
from recsys.stages.score import shard_of

LIVE_DAY, DAY = date(2026, 1, 1), date(2026, 1, 2)


def _register(settings, run_date, model="mf_als", kind="mf"):
    end = datetime.combine(run_date, datetime.min.time(), tzinfo=timezone.utc)
    folder = settings.artifact_dir / run_date.isoformat() / model
    return register_trained(settings, {
        "model": model, "model_kind": kind, "model_version": model_version(model, run_date), "run_date": run_date,
        "data_interval_start": end - timedelta(days=1), "data_interval_end": end,
        "train_window_start": end - timedelta(days=90), "n_interactions": 1, "n_users": 2000, "n_items": 100,
        "params": {}, "triggered_by": "test", "artifact_path": str(folder / "model.npz"), "artifact_sha256": "-",
    })


def _go_live(settings, run_date=LIVE_DAY, model="mf_als", kind="mf"):
    version = _register(settings, run_date, model, kind)
    publish.publish_lists(settings, model, version, run_date, np.array([1, 1]), np.array([1, 2], dtype=np.int16),
                          np.array([5, 6]), np.array([0.9, 0.8], dtype=np.float32))
    return version


def _evaluated(settings, version, **subjects):
    """What evaluate_holdout leaves for `version`: per-user ndcg of each subject (model=..., champion=...,
    popularity=..., trending=...) beside the model file, and their means in eval_metrics."""
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT artifact_path FROM model_runs WHERE model_version = %s", (version,))
        artifact_path = cur.fetchone()[0]
        n = len(subjects["model"])
        for subject, values in subjects.items():
            cur.execute("INSERT INTO eval_metrics (model_version, subject, metric, k, value, n_users)"
                        " VALUES (%s, %s, 'ndcg', %s, %s, %s)",
                        (version, subject, settings.k, float(np.mean(values)), n))
    holdout_users.save(holdout_users.path_for(artifact_path), holdout_users.HoldoutUsers(
        version, settings.k, np.arange(n), {s: {"ndcg": np.asarray(v, np.float64)} for s, v in subjects.items()}))


def _hits(n, share, seed):
    """(n,) per-user NDCG of a model that ranks the relevant item first for about `share` of the users."""
    return (np.random.default_rng(seed).random(n) < share).astype(np.float64)


def _gate(settings, version):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text("SELECT status, metrics->'gate' FROM model_runs WHERE model_version = :v"),
                            {"v": version}).one()


# the minimum number of hold-out users


def test_too_few_users_decide_nothing_the_first_model_goes_live_with_the_reason(settings):
    version = _register(settings, DAY)
    _evaluated(settings, version, model=_hits(36, 0.0, 1), popularity=_hits(36, 0.5, 2))
    decision = decide(settings, version)
    # below popularity, but 36 users decide nothing: the first model goes live, and says why
    assert decision.accepted and decision.n_users == 36
    assert decision.reason == ("no live model yet; ndcg@10 0.0000 on 36 hold-out users < 50 (RECSYS_GATE_MIN_USERS),"
                               " so the metric decides nothing: the first model goes live")
    assert _gate(settings, version)[0] == "trained"


def test_a_version_with_no_hold_out_user_is_the_small_sample_rule_too(settings):
    _go_live(settings)
    version = _register(settings, DAY)  # evaluated, but no user had a new item on the hold-out day
    with pytest.raises(PublishRejected, match="0 hold-out users < 50"):
        decide(settings, version)


def test_too_few_users_keep_the_champion_however_good_the_challenger_looks(settings):
    live = _go_live(settings)
    version = _register(settings, DAY)
    champion = _hits(39, 0.0, 1)
    _evaluated(settings, version, model=np.ones(39), champion=champion, popularity=champion)
    with pytest.raises(PublishRejected, match=f"39 hold-out users < 50 .*: rejected, live {live} stays"):
        decide(settings, version)
    status, gate = _gate(settings, version)
    assert status == "rejected" and gate["held_back_by"] == ["minimum hold-out users"]
    assert gate["reason"].startswith("ndcg@10 1.0000 vs live 0.0000 on 39 hold-out users < 50")
    # the same figures on enough users decide
    assert decide(dataclasses.replace(settings, gate_min_users=39), version).accepted


# the paired bootstrap with a relative tolerance


def test_slightly_worse_within_the_relative_tolerance_is_accepted_clearly_worse_is_rejected(settings):
    live = _go_live(settings)
    champion = _hits(4000, 0.30, 1)
    slightly = champion.copy()
    slightly[np.flatnonzero(champion)[:12]] = 0.0  # 12 of ~1200 hits lost: 1% worse, well within 5%
    version = _register(settings, DAY)
    _evaluated(settings, version, model=slightly, champion=champion, popularity=_hits(4000, 0.1, 2))
    decision = decide(settings, version)
    assert decision.accepted and decision.n_users == 4000
    low, high = decision.difference_ci
    assert low < decision.difference < 0 and low >= decision.tolerance_bound == pytest.approx(-0.05 * champion.mean())
    assert "paired diff -0.0030 [95% " in decision.reason and "on 4000 users >= -5% of live" in decision.reason
    assert decision.reason.endswith(": accepted")

    clearly = champion.copy()
    clearly[np.flatnonzero(champion)[:150]] = 0.0  # 150 of ~1200 hits lost: 12.5% worse
    worse = _register(settings, DAY + timedelta(days=1))
    _evaluated(settings, worse, model=clearly, champion=champion, popularity=_hits(4000, 0.1, 2))
    with pytest.raises(PublishRejected, match=f"< -5% of live .*: rejected, live {live} stays"):
        decide(settings, worse)
    status, gate = _gate(settings, worse)
    assert status == "rejected" and gate["held_back_by"] == ["tolerance"]
    assert gate["difference_ci"][0] < gate["tolerance_bound"]


def test_the_mind_night_is_rejected_where_the_absolute_tolerance_let_it_through(settings):
    """MIND 2019-11-14: NDCG 0.0041 against the live model's 0.0071, which `>= 0.0071 - 0.005` accepted."""
    _go_live(settings)
    n = 10_000
    champion, challenger = np.zeros(n), np.zeros(n)
    champion[:71], challenger[30:71] = 1.0, 1.0  # 0.0071 and 0.0041, on overlapping users
    version = _register(settings, DAY)
    _evaluated(settings, version, model=challenger, champion=champion, popularity=np.zeros(n))
    assert challenger.mean() >= champion.mean() - settings.gate_tolerance  # the old rule's verdict
    with pytest.raises(PublishRejected, match=r"ndcg@10 0\.0041 vs live 0\.0071: paired diff -0\.0030 "
                                              r"\[95% -0\.00\d\d, -0\.00\d\d\] on 10000 users < -5% of live \(-0\.0004\)"):
        decide(settings, version)


def test_the_interval_is_the_paired_bootstrap_of_the_stored_per_user_figures_and_reruns_decide_the_same(settings):
    _go_live(settings)
    champion = _hits(800, 0.2, 1)
    challenger = np.where(_hits(800, 0.1, 3) > 0, 1.0 - champion, champion)  # differs on ~10% of the users
    version = _register(settings, DAY)
    _evaluated(settings, version, model=challenger, champion=champion, popularity=np.zeros(800))
    first = decide(settings, version)
    expected = paired_bootstrap(challenger, champion, settings.gate_bootstrap_samples, settings.gate_seed)
    assert first.difference_ci == (expected.low, expected.high) and first.difference == expected.mean
    again = decide(settings, version)  # the gate re-run for the same logical date
    assert again == first and _gate(settings, version)[1]["reason"] == first.reason
    other = decide(dataclasses.replace(settings, gate_seed=7), version)
    assert other.difference_ci != first.difference_ci and other.difference == first.difference


def test_without_per_user_figures_the_means_are_compared_and_the_reason_says_so(settings):
    _go_live(settings)
    version = _register(settings, DAY)
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        for subject, value in (("model", 0.200), ("champion", 0.203)):  # a version evaluated before they were kept
            cur.execute("INSERT INTO eval_metrics (model_version, subject, metric, k, value, n_users)"
                        " VALUES (%s, %s, 'ndcg', %s, %s, 500)", (version, subject, settings.k, value))
    decision = decide(settings, version)
    assert decision.accepted and "diff -0.0030 on 500 users (means only: no per-user figures)" in decision.reason


def test_a_metric_kept_only_as_a_mean_is_compared_on_its_means(settings):
    _go_live(settings)
    version = _register(settings, DAY)
    _evaluated(settings, version, model=_hits(100, 0.3, 1), champion=_hits(100, 0.3, 2))  # per-user ndcg only
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        for subject, value in (("model", 0.50), ("champion", 0.40)):
            cur.execute("INSERT INTO eval_metrics (model_version, subject, metric, k, value, n_users)"
                        " VALUES (%s, %s, 'coverage', %s, %s, 100)", (version, subject, settings.k, value))
    decision = decide(dataclasses.replace(settings, gate_metric="coverage"), version)
    assert decision.accepted and decision.n_users == 100
    assert "coverage@10 0.5000 vs live 0.4000: diff +0.1000 on 100 users (means only" in decision.reason


def test_per_user_figures_of_another_evaluation_are_refused(settings):
    from recsys.errors import DataValidationError

    _go_live(settings)
    version = _register(settings, DAY)
    _evaluated(settings, version, model=_hits(100, 0.3, 1), champion=_hits(100, 0.3, 2))
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("UPDATE eval_metrics SET value = value + 0.01 WHERE model_version = %s AND subject = 'model'",
                    (version,))
    with pytest.raises(DataValidationError, match="re-run the version's evaluate step"):
        decide(settings, version)


# the baseline floor


def test_a_model_below_popularity_is_not_published_unless_forced(settings):
    version = _register(settings, DAY)
    mine, popular = _hits(1000, 0.05, 1), _hits(1000, 0.10, 2)
    _evaluated(settings, version, model=mine, popularity=popular, trending=_hits(1000, 0.03, 3))
    with pytest.raises(PublishRejected, match="below the best baseline, popularity's"):
        decide(settings, version)
    status, gate = _gate(settings, version)
    assert status == "rejected" and gate["floor_baseline"] == "popularity"
    assert gate["reason"] == (f"no live model yet; ndcg@10 {mine.mean():.4f} on 1000 users; below the best baseline,"
                              f" popularity's {popular.mean():.4f} (RECSYS_GATE_BASELINE_FLOOR): rejected,"
                              " nothing goes live")

    forced = decide(settings, version, force=True)
    assert forced.accepted and forced.held_back_by == ("baseline floor",)
    assert forced.reason.startswith("forced by the run's force_publish parameter past the baseline floor: ")
    assert f"popularity's {popular.mean():.4f}" in forced.reason

    assert decide(dataclasses.replace(settings, gate_baseline_floor=False), version).accepted


def test_the_floor_counts_the_nights_baseline_models_and_spares_the_baselines(settings):
    mine, popular, knn = _hits(1000, 0.10, 1), _hits(1000, 0.05, 2), _hits(1000, 0.20, 3)
    baseline = _register(settings, DAY, "baseline_popular", "baseline")  # tonight's best baseline, as a model
    _evaluated(settings, baseline, model=knn, popularity=popular)
    version = _register(settings, DAY)
    _evaluated(settings, version, model=mine, popularity=popular)
    with pytest.raises(PublishRejected, match=f"below the best baseline, baseline_popular's {knn.mean():.4f}"):
        decide(settings, version)
    # a baseline is not held to the floor, nor to itself
    assert decide(settings, baseline).accepted
    # another night's baseline, or one evaluated on other users, is not tonight's floor
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("UPDATE eval_metrics SET n_users = 999 WHERE model_version = %s", (baseline,))
    assert decide(settings, version).floor_baseline == "popularity"


def test_an_accepted_challenger_names_figures_interval_users_tolerance_and_floor(settings):
    live = _go_live(settings)
    champion = _hits(812, 0.30, 1)
    challenger = champion.copy()
    challenger[np.flatnonzero(champion == 0)[:5]] = 1.0  # five more hits
    version = _register(settings, DAY)
    _evaluated(settings, version, model=challenger, champion=champion, popularity=_hits(812, 0.1, 2))
    decision = decide(settings, version)
    paired = paired_bootstrap(challenger, champion, 1000, 42)
    assert decision.reason == (
        f"ndcg@10 {challenger.mean():.4f} vs live {champion.mean():.4f}: paired diff {paired.mean:+.4f} "
        f"[95% {paired.low:+.4f}, {paired.high:+.4f}] on 812 users >= -5% of live ({-0.05 * champion.mean():+.4f}); "
        f">= the best baseline, popularity's {decision.floor:.4f}: accepted")
    assert decision.champion_version == live


# the rules before the metric


def test_force_publishes_a_worse_model_and_says_what_it_was_forced_past(settings):
    _go_live(settings)
    worse = _register(settings, DAY)
    _evaluated(settings, worse, model=_hits(500, 0.1, 1), champion=_hits(500, 0.3, 2))
    decision = decide(settings, worse, force=True)
    assert decision.accepted and decision.reason.startswith(
        "forced by the run's force_publish parameter past the tolerance: ndcg@10 ")
    assert _gate(settings, worse)[0] == "trained"


def test_backfill_of_an_older_date_fills_history_without_comparison(settings):
    _go_live(settings, date(2026, 1, 5))
    older = _register(settings, date(2026, 1, 3))
    _evaluated(settings, older, model=np.zeros(100), champion=np.ones(100))
    assert decide(settings, older).reason.startswith("history only")


def test_shards_partition_the_users_stably():
    users = np.arange(10_000, dtype=np.int64) * 13
    for n in (1, 2, 3, 8):
        shards = shard_of(users, n)
        assert shards.min() >= 0 and shards.max() == n - 1
        assert np.array_equal(shards, shard_of(users.copy(), n))
        counts = np.bincount(shards, minlength=n)
        assert counts.min() > 0.8 * len(users) / n
