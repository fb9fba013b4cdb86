"""The DR gate (`RECSYS_GATE_METRIC=dr_return_lcb`): the challenger's lower bound against the champion.

The log is built so the answer is known: on the logged day D-2 every user sees one
uniformly random slate (inclusion propensity K / N_ITEMS) and comes back on day D-1
more often the more GOOD items the slate held and less often the more BAD ones. A list
policy of GOOD items therefore has a much higher D1 return rate than one of BAD items,
and the off-policy estimates must say so on both sides of the gate.
"""

import dataclasses
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from eventdata import copy_events
from recsys.db import engine as db
from recsys.stages import publish
from recsys.config import DR_DIFF_GATE_METRIC, DR_GATE_METRIC, OPEConfig, Settings
from recsys.stages.gate import RL_RANKING_REASON, MissingEstimateError, PublishRejected, decide
from recsys.interval import DataInterval
from recsys.stages.ope import estimate_candidate
from recsys.db.registry import model_version, register_trained

RUN_DATE = date(2026, 1, 10)  # the night D; the logged day is D-2, its return day D-1
LOGGED_DAY = date(2026, 1, 8)
K, N_ITEMS, USERS = 4, 40, 1200
GOOD, BAD = np.arange(K), np.arange(N_ITEMS - K, N_ITEMS)


@pytest.fixture
def dr(settings: Settings) -> Settings:
    return dataclasses.replace(settings, k=K, gate_metric=DR_GATE_METRIC,
                               ope=dataclasses.replace(OPEConfig(), n_bootstrap=100))


def _log(settings: Settings, impressions: bool = True, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    start = datetime.combine(LOGGED_DAY, datetime.min.time(), tzinfo=timezone.utc)
    shown, returns = [], []
    for user in range(USERS):
        slate = rng.choice(N_ITEMS, K, replace=False)
        at = start + timedelta(hours=8, seconds=user)
        shown += [(at + timedelta(milliseconds=slot), user, int(item), "impression", None, 10_000 + user,
                   "logging@test", K / N_ITEMS) for slot, item in enumerate(slate)]
        p_return = np.clip(0.3 + 0.15 * np.isin(slate, GOOD).sum() - 0.1 * np.isin(slate, BAD).sum(), 0.02, 0.98)
        if rng.random() < p_return:
            returns.append((start + timedelta(days=1, hours=9), user, int(slate[0]), "consume", 4.0))
    if impressions:
        copy_events(settings, pd.DataFrame(shown), source="test:impressions")
    else:  # the same day without impressions: users consumed, nothing was logged with a propensity
        copy_events(settings, pd.DataFrame([(t, u, i, "consume", 4.0) for t, u, i, *_ in shown[::K]]),
                    source="test:consumed")
    copy_events(settings, pd.DataFrame(returns), source="test:returns")


def _register(settings: Settings, model: str, run_date: date) -> str:
    end = datetime.combine(run_date, datetime.min.time(), tzinfo=timezone.utc)
    return register_trained(settings, {
        "model": model, "model_kind": "rl" if model.startswith("rl_") else "mf",
        "model_version": model_version(model, run_date), "run_date": run_date,
        "data_interval_start": end - timedelta(days=1), "data_interval_end": end,
        "train_window_start": end - timedelta(days=30), "n_interactions": 1, "n_users": USERS, "n_items": N_ITEMS,
        "params": {}, "triggered_by": "test", "artifact_path": "-", "artifact_sha256": "-",
    })


def _lists(items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    users = np.repeat(np.arange(USERS, dtype=np.int64), K)
    ranks = np.tile(np.arange(1, K + 1, dtype=np.int16), USERS)
    return users, ranks, np.tile(items.astype(np.int64), USERS), np.tile(np.linspace(1, 0.5, K, dtype=np.float32),
                                                                          USERS)


def _champion(settings: Settings, model: str, items: np.ndarray) -> str:
    """The live version of `model` for the day before RUN_DATE, serving `items` to every user."""
    run_date = RUN_DATE - timedelta(days=1)
    version = _register(settings, model, run_date)
    assert publish.publish_lists(settings, model, version, run_date, *_lists(items))
    return version


def _challenger(settings: Settings, model: str, items: np.ndarray, tmp_path) -> str:
    """A candidate for RUN_DATE whose scores artifact lists `items`, estimated as ope_rl / evaluate do."""
    version = _register(settings, model, RUN_DATE)
    users, ranks, listed, scores = _lists(items)
    path = tmp_path / f"{model}-scores.npz"
    np.savez(path, user_id=users, rank=ranks, item_id=listed, score=scores)
    manifest = estimate_candidate(settings, DataInterval.for_date(RUN_DATE), "-", version, str(path))
    assert manifest.logged_day == LOGGED_DAY.isoformat()
    return version


def _run(settings: Settings, version: str):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text("SELECT status, metrics->'gate' FROM model_runs WHERE model_version = :v"),
                            {"v": version}).one()


def _stored(settings: Settings, version: str, subject: str) -> dict[str, float]:
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        rows = conn.execute(text("SELECT metric, value FROM eval_metrics WHERE model_version = :v"
                                 " AND subject = :s"), {"v": version, "s": subject}).fetchall()
    return dict(rows)


def test_settings_read_the_dr_gate_from_the_environment():
    assert Settings.from_env({}).gate_metric == "ndcg"
    assert Settings.from_env({"RECSYS_GATE_METRIC": "dr_return_lcb"}).gate_metric == DR_GATE_METRIC == "dr_return_lcb"
    assert Settings.from_env({"RECSYS_GATE_METRIC": "dr_return_lcb", "RECSYS_GATE_TOLERANCE": "0.02"}).gate_tolerance \
        == 0.02


def test_challenger_whose_lower_bound_clears_the_champion_is_accepted(dr, tmp_path):
    _log(dr)
    champion = _champion(dr, "rl_reinforce", BAD)
    challenger = _challenger(dr, "rl_reinforce", GOOD, tmp_path)

    decision = decide(dr, challenger)

    assert decision.accepted and decision.metric == "dr_return_lcb" and decision.champion_version == champion
    assert decision.logged_day == "2026-01-08"
    low, high = decision.challenger_ci
    assert decision.challenger == low <= decision.challenger_estimate <= high
    # the champion's figure is its own lists' estimate on the same day, stored under its version
    stored = _stored(dr, champion, "ope@2026-01-08")
    assert decision.champion == pytest.approx(stored["dr_return"])
    assert decision.champion_ci == (pytest.approx(stored["dr_return_ci_low"]),
                                    pytest.approx(stored["dr_return_ci_high"]))
    assert low > decision.champion + 0.2  # GOOD lists bring users back, BAD ones do not
    status, gate = _run(dr, challenger)
    assert status == "trained" and gate["accepted"] and gate["challenger"] == pytest.approx(low)
    assert gate["champion"] == pytest.approx(decision.champion) and gate["challenger_ci"] == [low, high]


@pytest.mark.parametrize("model", ["rl_reinforce", "mf_als"])
def test_challenger_below_the_champion_beyond_tolerance_is_rejected(dr, tmp_path, model):
    _log(dr)
    champion = _champion(dr, model, GOOD)
    challenger = _challenger(dr, model, BAD, tmp_path)
    ranking = dataclasses.replace(dr, gate_metric="ndcg")
    if model == "rl_reinforce":  # no ranking gate for RL, but its four items for everyone are a collapse
        with pytest.raises(PublishRejected, match=f"{RL_RANKING_REASON}; evidence: the off-policy estimate, DR D1 return 0.[0-9]+; collapsed: its lists "
                                                  f"hold 4 distinct items over {USERS} users .* < 20 "
                                                  r"\(RECSYS_GATE_MIN_DISTINCT_ITEMS\): rejected"):
            decide(ranking, challenger)
    else:  # MF without hold-out figures: no hold-out user, too few for the ranking gate to decide
        with pytest.raises(PublishRejected, match=f"0 hold-out users < 50 .*: rejected, live {champion} stays"):
            decide(ranking, challenger)

    with pytest.raises(PublishRejected, match=f"worse than live {champion}'s"):
        decide(dr, challenger)

    status, gate = _run(dr, challenger)
    assert status == "rejected" and not gate["accepted"]
    assert gate["champion_version"] == champion and gate["logged_day"] == "2026-01-08"
    assert gate["challenger"] < gate["champion"] - dr.gate_tolerance
    assert gate["challenger_ci"][0] == gate["challenger"] <= gate["challenger_estimate"]
    assert f"{gate['challenger']:.4f}" in gate["reason"] and f"{gate['champion']:.4f}" in gate["reason"]
    # the live tables stay
    with db.get_engine(dr.database_url, dr.schema).connect() as conn:
        live = conn.execute(text("SELECT model_version FROM live_models WHERE model = :m"), {"m": model}).scalar()
    assert live == champion


def test_tolerance_and_a_stored_champion_estimate(dr, tmp_path):
    """Figures inserted directly: the rule at its limit, and the champion's stored row for the
    logged day is used as is (the log holds no impressions, so nothing could be recomputed)."""
    champion = _champion(dr, "rl_reinforce", GOOD)
    challenger = _register(dr, "rl_reinforce", RUN_DATE)

    def put(version, subject, **figures):
        with db.raw_connection(dr.database_url, dr.schema) as conn, conn.cursor() as cur:
            for metric, value in figures.items():
                cur.execute("INSERT INTO eval_metrics (model_version, subject, metric, k, value, n_users)"
                            " VALUES (%s, %s, %s, %s, %s, 500) ON CONFLICT (model_version, subject, metric, k)"
                            " DO UPDATE SET value = EXCLUDED.value", (version, subject, metric, K, value))

    put(challenger, "ope", dr_return=0.45, dr_return_ci_low=0.40, dr_return_ci_high=0.50)
    put(champion, "ope@2026-01-08", dr_return=0.403)
    decision = decide(dr, challenger)  # 0.40 >= 0.403 - 0.005
    assert decision.accepted and (decision.challenger, decision.champion) == (0.40, 0.403)
    assert decision.challenger_estimate == 0.45 and decision.challenger_ci == (0.40, 0.50)

    put(champion, "ope@2026-01-08", dr_return=0.406)  # 0.40 < 0.406 - 0.005
    with pytest.raises(PublishRejected):
        decide(dr, challenger)
    assert _run(dr, challenger)[0] == "rejected"
    # the champion's own night's estimate (another logged day) is not what the gate compares
    put(champion, "ope", dr_return=0.10)
    with pytest.raises(PublishRejected):
        decide(dr, challenger)


def test_without_logged_impressions_the_fresher_mf_model_is_published_but_rl_is_not(dr, tmp_path):
    _log(dr, impressions=False)
    champion = _champion(dr, "mf_als", GOOD)
    challenger = _challenger(dr, "mf_als", BAD, tmp_path)  # estimates nothing: no impressions
    rl_live = _champion(dr, "rl_reinforce", GOOD)
    rl = _challenger(dr, "rl_reinforce", BAD, tmp_path)
    # RL has no ranking hold-out either: no evidence at all, so the live RL version stays
    with pytest.raises(PublishRejected, match=r"no off-policy estimate on 2026-01-08 \(no logged impressions with "
                                              rf"propensities\) and no ranking hold-out: no evidence: rejected, "
                                              rf"live {rl_live} stays"):
        decide(dr, rl)

    decision = decide(dr, challenger)

    assert decision.accepted and decision.champion_version == champion
    assert decision.reason == ("no off-policy estimate on 2026-01-08 (no logged impressions with propensities):"
                               " publishing the fresher model")
    assert decision.challenger is None and decision.champion is None
    assert _run(dr, challenger)[1]["reason"] == decision.reason


def test_rl_without_an_estimate_or_a_hold_out_is_not_published_unless_forced(dr, tmp_path):
    """No propensities on the logged day: no off-policy estimate, and RL has no ranking hold-out."""
    _log(dr, impressions=False)
    champion = _champion(dr, "rl_reinforce", GOOD)
    challenger = _challenger(dr, "rl_reinforce", BAD, tmp_path)
    ranking = dataclasses.replace(dr, gate_metric="ndcg", gate_min_distinct_items=0)  # this test: evidence only
    with pytest.raises(PublishRejected, match=r"no off-policy estimate \(no logged impressions with propensities on "
                                              rf"2026-01-08\) and no ranking hold-out: no evidence; its lists hold 4 distinct items "
                                              f"over {USERS} users .*: rejected, live {champion} stays"):
        decide(ranking, challenger)
    assert _run(dr, challenger)[0] == "rejected"
    forced = decide(ranking, challenger, force=True)
    assert forced.accepted and forced.reason.startswith("forced by the run's force_publish parameter")


def test_impressions_without_the_challengers_estimate_is_an_error(dr):
    _log(dr)
    _champion(dr, "rl_reinforce", GOOD)
    challenger = _register(dr, "rl_reinforce", RUN_DATE)  # estimate_candidate never ran
    with pytest.raises(MissingEstimateError, match="run recsys.stages.ope.estimate_candidate before the gate"):
        decide(dr, challenger)


def test_existing_rules_hold_under_the_dr_gate(dr):
    first = _register(dr, "rl_reinforce", RUN_DATE - timedelta(days=3))
    # no impressions logged at all: a first RL model has no estimate and no hold-out, so no evidence
    with pytest.raises(PublishRejected, match="no ranking hold-out: no evidence: rejected, nothing goes live"):
        decide(dr, first)
    live = _champion(dr, "rl_reinforce", GOOD)
    assert decide(dr, live).reason == "re-run of the live version"
    older = _register(dr, "rl_reinforce", RUN_DATE - timedelta(days=2))
    assert decide(dr, older).reason.startswith("history only")
    newer = _register(dr, "rl_reinforce", RUN_DATE)
    decision = decide(dr, newer, force=True)
    assert decision.accepted and "forced" in decision.reason


def test_nights_under_the_dr_gate_estimate_before_every_gate(settings):
    """run_night in the DAG's order: MF's estimate in evaluate, RL's ope before its gate before its publish."""
    from recsys.config import RLConfig
    from recsys.pipeline import run_night
    from recsys.sim.closed_loop import run_closed_loop

    s = dataclasses.replace(settings, train_window_days=30, gate_metric=DR_GATE_METRIC,
                            rl=RLConfig(embedding_dim=8, hidden_dim=8, epochs=2, batch_sessions=128),
                            search=dataclasses.replace(settings.search, enabled=False),
                            ope=dataclasses.replace(OPEConfig(), n_bootstrap=50))
    run_closed_loop(s, days=3, users=300, items=60, seed=1)
    run_night(s, DataInterval.for_date(date(2026, 1, 3)), extra_models=("rl_reinforce",))
    stages: list[str] = []
    report = run_night(s, DataInterval.for_date(date(2026, 1, 4)), extra_models=("rl_reinforce",),
                       on_stage=stages.append)

    assert stages.index("mf_als.evaluate") < stages.index("mf_als.gate"), stages
    assert stages.index("rl_reinforce.train") < stages.index("rl_reinforce.ope") < stages.index("rl_reinforce.gate"), stages
    assert "rl_reinforce.publish" not in stages or stages.index("rl_reinforce.gate") < stages.index("rl_reinforce.publish"), stages
    assert stages[-3:] == ["retention", "ope_realised", "cleanup_artifacts"], stages
    assert report.results["mf_als.evaluate"]["ope"]["logged_day"] == "2026-01-02"
    for model in ("mf_als", "rl_reinforce"):
        status, gate = _run(s, f"{model}@2026-01-04")
        assert gate["metric"] == "dr_return_lcb" and gate["logged_day"] == "2026-01-02", gate
        assert gate["champion_version"] == f"{model}@2026-01-03"
        assert gate["challenger"] is not None and gate["champion"] is not None, gate
        assert status == ("published" if gate["accepted"] else "rejected")
    assert ("rl_reinforce.publish" in report.results) == _run(s, "rl_reinforce@2026-01-04")[1]["accepted"]


@pytest.fixture
def paired(settings: Settings) -> Settings:
    return dataclasses.replace(settings, k=K, gate_metric=DR_DIFF_GATE_METRIC, gate_tolerance=0.0,
                               ope=dataclasses.replace(OPEConfig(), n_bootstrap=100))


def test_paired_gate_passes_a_challenger_serving_the_live_lists_which_the_unpaired_rule_fails(paired, tmp_path):
    _log(paired)
    champion = _champion(paired, "rl_reinforce", GOOD)
    challenger = _challenger(paired, "rl_reinforce", GOOD, tmp_path)
    stored = _stored(paired, challenger, f"ope_diff@{champion}")
    assert stored["dr_return"] == stored["dr_return_ci_low"] == stored["dr_return_ci_high"] == 0.0

    decision = decide(paired, challenger)

    assert decision.accepted and decision.metric == "dr_return_diff_lcb" and "paired" in decision.reason
    assert decision.difference == 0.0 and decision.difference_ci == (0.0, 0.0)
    assert decision.challenger == decision.champion == 0.0
    low, high = decision.challenger_ci  # the challenger's own estimate is still recorded
    assert low < decision.challenger_estimate < high
    # the unpaired rule without tolerance fails the same lists: their lower bound is below their own estimate
    with pytest.raises(PublishRejected, match=f"worse than live {champion}'s"):
        decide(dataclasses.replace(paired, gate_metric=DR_GATE_METRIC), challenger)


def test_paired_gate_rejects_a_worse_challenger_and_falls_back_without_a_paired_estimate(paired, tmp_path):
    _log(paired)
    champion = _champion(paired, "mf_als", GOOD)
    challenger = _challenger(paired, "mf_als", BAD, tmp_path)

    with pytest.raises(PublishRejected, match=f"worse than live {champion} by more than 0.0"):
        decide(paired, challenger)
    status, gate = _run(paired, challenger)
    assert status == "rejected" and gate["champion"] == 0.0
    low, high = gate["difference_ci"]
    assert gate["challenger"] == low <= gate["difference"] <= high < -0.2  # BAD lists lose users

    # no paired estimate against the live version (e.g. it changed after the estimate): the unpaired rule
    with db.get_engine(paired.database_url, paired.schema).begin() as conn:
        conn.execute(text("DELETE FROM eval_metrics WHERE subject = :s"), {"s": f"ope_diff@{champion}"})
    with pytest.raises(PublishRejected, match=f"no paired estimate against live {champion}, so dr_return_lcb's rule"):
        decide(paired, challenger)
    status, gate = _run(paired, challenger)
    assert gate["difference"] is None and gate["champion"] > gate["challenger"]
