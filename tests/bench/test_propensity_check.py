"""bench/propensity_check.py --quick: the SUMMARY's figures exist and are finite, the behaviour head's
estimate ranks impressions as the logged propensities do, and the OPE with the logged propensities
is what evaluate_list_policy gives on the same impressions."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "propensity_check.py"
KEYS = ("propensity_mae", "propensity_rel_err", "propensity_corr", "ope_return_logged", "ope_return_estimated",
        "ope_return_diff")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_propensity_check", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_summary_is_finite_and_the_estimate_follows_the_logged_propensities(bench, capsys):
    assert bench.main(["--quick"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("SUMMARY ")
    summary = dict(pair.split("=") for pair in line.split()[1:])
    for key in KEYS:
        assert math.isfinite(float(summary[key])), (key, line)
    assert float(summary["propensity_mae"]) >= 0
    # the head's estimate orders impressions as the logging policy does (both as ranks, so the
    # column's per-slot scale does not matter), and is nearer the true inclusion probability
    assert float(summary["propensity_corr"]) > 0.3 and float(summary["inclusion_corr"]) > 0.3
    assert float(summary["inclusion_rel_err"]) < float(summary["propensity_rel_err"])
    assert float(summary["ope_return_diff"]) == pytest.approx(
        float(summary["ope_return_estimated"]) - float(summary["ope_return_logged"]), abs=2e-4)


def test_propensity_errors_by_hand(bench):
    m = bench.propensity_errors(np.array([0.2, 0.2, 0.6]), np.array([0.1, 0.4, 0.5]))
    assert m["mae"] == pytest.approx((0.1 + 0.2 + 0.1) / 3)
    assert m["rel_err"] == pytest.approx(0.5)  # median of 1.0, 0.5, 0.2
    assert m["mean_ratio"] == pytest.approx(1.0)
    # Pearson of the ranks (1.5, 1.5, 3) and (1, 2, 3): 1.5 / sqrt(1.5 * 2)
    assert m["spearman"] == pytest.approx(3 ** 0.5 / 2)


def test_ope_with_the_logged_column_is_evaluate_list_policy_on_the_raw_log(bench):
    """The bench's OPE inputs, taken from the trajectories, against the same day read straight
    from the simulated events as the nightly's SQL reads it (clicked in its session, came back
    the next day): the same estimates for a popularity list."""
    import pandas as pd

    from recsys.config import OPEConfig
    from recsys.metrics.off_policy import evaluate_list_policy

    frame, traj, _ = bench.simulate(4, 300, 40, seed=2)
    day = int(traj.session_day.max()) - 1
    on_day, user, returned = bench.ope_inputs(frame, traj, day)
    cfg = OPEConfig()
    popular = np.argsort(-np.bincount(traj.action, minlength=40), kind="stable")[:bench.K]
    listed = np.unique(user)
    ours = evaluate_list_policy(user, traj.action[on_day], traj.session_of[on_day], traj.propensity[on_day],
                                traj.click[on_day], returned, listed, np.tile(popular, (len(listed), 1)),
                                40, cfg.explore, cfg.weight_cap, 50, cfg.seed, cfg.session_weight)

    ev = frame.assign(day=frame["event_time"].astype("int64") // 86_400_000_000, type=frame["event_type"].astype(str))
    imp = ev[(ev["type"] == "impression") & (ev["day"] == day)]
    clicks = ev.loc[ev["type"] == "click", ["user_id", "item_id", "session_id"]].drop_duplicates().assign(clicked=1.0)
    imp = imp.merge(clicks, on=["user_id", "item_id", "session_id"], how="left").fillna({"clicked": 0.0})
    back = ev.loc[ev["type"].isin(["click", "consume"]) & (ev["day"] == day + 1), "user_id"].unique()
    imp = imp.sort_values(["user_id", "session_id"], kind="stable")
    u = imp["user_id"].to_numpy(np.int64)
    raw = evaluate_list_policy(u, imp["item_id"].to_numpy(np.int64), imp["session_id"].to_numpy(np.int64),
                               imp["propensity"].to_numpy(np.float64), imp["clicked"].to_numpy(np.float64),
                               np.isin(u, back).astype(np.float64), np.unique(u),
                               np.tile(popular, (len(np.unique(u)), 1)), 40, cfg.explore, cfg.weight_cap, 0,
                               cfg.seed, cfg.session_weight)
    assert len(imp) == len(on_day) > 0 and returned.sum() > 0
    for target in ("click", "return"):
        for estimator in ("ips", "snips", "dr"):
            assert ours[target][estimator].value == pytest.approx(raw[target][estimator].value, rel=1e-9), \
                (target, estimator)
