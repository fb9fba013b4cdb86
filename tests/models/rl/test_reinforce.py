"""REINFORCE with top-K correction: hand-computed factors, trajectories, a falling loss, determinism."""

import dataclasses
from datetime import date

import numpy as np
import pytest
import torch

from recsys.config import RLConfig
from recsys.errors import ModelFitError
from recsys.models.rl import trajectories
from recsys.models.rl.reinforce import (behaviour_propensities, capped_importance_weight, fit_reinforce,
                                        reinforce_loss, topk_correction)
from recsys.models.rl.training import check_finite, serving_factors
from recsys.sim.closed_loop import ArmServer, day_events
from recsys.sim.world import World

DAY = 86_400.0


def test_topk_correction_matches_hand_computed_values():
    pi = torch.tensor([0.1, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(topk_correction(pi, 3), [3 * 0.9**2, 3 * 0.5**2, 3.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(topk_correction(pi, 1), [1, 1, 1, 1])
    np.testing.assert_allclose(topk_correction(torch.tensor([0.2]), 10), [10 * 0.8**9], rtol=1e-6)


def test_importance_weights_are_capped():
    w = capped_importance_weight(torch.tensor([0.2, 0.05, 0.3]), torch.tensor([0.01, 0.1, 0.03]), cap=10.0)
    np.testing.assert_allclose(w, [10.0, 0.5, 10.0], rtol=1e-6)


def test_trajectories_reward_retention_and_history_by_hand():
    # user 0: session A on day 0 (items 1, 2 shown, 2 clicked), session B on day 1 (item 3 shown, not clicked)
    # user 1: one session on day 0 (item 0 shown), never back
    user = np.array([0, 0, 0, 0, 1])
    item = np.array([1, 2, 2, 3, 0])
    code = np.array([0, 0, 1, 0, 0])
    ts = np.array([10, 11, 20, DAY + 5, 30.0])
    session = np.array([1, 1, 1, 2, 3.0])
    prop = np.array([0.5, 0.5, np.nan, np.nan, 1.0])
    t = trajectories.build(user, item, code, ts, session, prop, n_items=4, history_len=2, gamma=0.5,
                           retention_weight=1.0, return_horizon_days=1, window_end_ts=3 * DAY,
                           retention_credit="session")
    assert t.n == 4
    by_key = {(int(s), int(a)): (r, c) for s, a, r, c in zip(t.session_of, t.action, t.reward, t.click)}
    sess = {int(t.session_user[s]): s for s in range(3) if t.session_day[s] == 0}
    sess_b = next(s for s in range(3) if t.session_day[s] == 1)
    # session B: click 0, returned 0 (day 2 seen, no session), G_next 0
    assert by_key[(sess_b, 3)] == (0.0, 0.0)
    # session A: returned 1; G_next = value of B = 0.0 + 1 * 0 + 0.5 * 0
    assert by_key[(sess[0], 2)] == (1.0 + 1.0, 1.0)
    assert by_key[(sess[0], 1)] == (0.0 + 1.0, 0.0)
    assert by_key[(sess[1], 0)] == (0.0, 0.0)
    # history of session B: the item clicked before it, left-padded
    np.testing.assert_array_equal(t.history[sess_b], [4, 2])
    np.testing.assert_array_equal(t.history[sess[0]], [4, 4])
    assert t.propensity_coverage == pytest.approx(0.75)
    # credit to clicks only: the unclicked item 1 of session A loses the retention credit
    c = trajectories.build(user, item, code, ts, session, prop, 4, 2, 0.5, 1.0, 1, 3 * DAY, retention_credit="clicked")
    by_key_c = {(int(s), int(a)): r for s, a, r in zip(c.session_of, c.action, c.reward)}
    assert by_key_c[(sess[0], 2)] == 2.0 and by_key_c[(sess[0], 1)] == 0.0


def test_censored_sessions_get_the_prior_return_rate():
    user, item, code = np.array([0, 0, 1]), np.array([0, 1, 2]), np.zeros(3, np.int8)
    ts, session = np.array([5.0, DAY + 5, DAY + 7]), np.array([1.0, 2.0, 3.0])
    t = trajectories.build(user, item, code, ts, session, np.full(3, 0.5), 3, 2, 0.9, 1.0, 1, window_end_ts=2 * DAY)
    # only user 0's day-0 session is uncensored (and returned): the prior is 1.0
    np.testing.assert_allclose(np.sort(t.session_returned), [1.0, 1.0, 1.0])


def small_log(days=4, users=400, items=60, seed=0, propensities=True, abandon_penalty=0.0):
    """Trajectories of a few random-slate days of the closed-loop world. The reward is the
    one these tests were written for (click + 4 x consumed); the abandon penalty has its own test."""
    return small_world_log(days, users, items, seed, propensities, abandon_penalty)[0]


def small_world_log(days=4, users=400, items=60, seed=0, propensities=True, abandon_penalty=0.0):
    world = World(users, items, days, seed)
    server = ArmServer(items, 10, 0.0, seed)
    frames = []
    for day in range(days):
        active = world.active_users(day)
        slate, prop = server.random_slates(len(active), np.random.default_rng([seed, day]))
        outcome = world.step(day, active, slate)
        frames.append(day_events(outcome, prop, np.full(len(active), "random@sim", dtype=object),
                                 date(2026, 1, 1 + day), world.quality, np.random.default_rng(day)))
    import pandas as pd
    f = pd.concat(frames, ignore_index=True)
    code = f["event_type"].cat.codes.to_numpy()
    ts = f["event_time"].astype("int64").to_numpy() / 1e6
    prop_col = f["propensity"].to_numpy() if propensities else np.full(len(f), np.nan)
    return trajectories.build(f["user_id"].to_numpy(), f["item_id"].to_numpy(), code, ts,
                              f["session_id"].to_numpy(np.float64), prop_col, items, 5, 0.9, 1.0, 1,
                              window_end_ts=ts.max() + 1, abandon_penalty=abandon_penalty), world


CFG = RLConfig(embedding_dim=8, hidden_dim=8, history_len=5, epochs=5, batch_sessions=64, learning_rate=0.01)


def test_loss_falls_and_fit_is_deterministic_for_a_seed():
    traj = small_log()
    net, fit = fit_reinforce(traj, CFG, k=10)
    assert fit.loss[-1] < fit.loss[0]
    assert fit.critic[-1] < fit.critic[0] and fit.behaviour[-1] < fit.behaviour[0]
    net2, fit2 = fit_reinforce(traj, CFG, k=10)
    assert fit.loss == fit2.loss
    for a, b in zip(net.parameters(), net2.parameters()):
        assert torch.equal(a, b)
    user_f, item_f = serving_factors(net, traj.history[:5])
    assert user_f.shape == (5, 9) and item_f.shape == (60, 9) and np.isfinite(user_f).all()
    with torch.no_grad():
        expected = net.policy(net.encoder(torch.from_numpy(traj.history[:5]))).numpy()
    np.testing.assert_allclose(user_f @ item_f.T, expected, rtol=1e-4, atol=1e-5)


def test_abandon_penalty_turns_the_policy_from_clickbait_to_quality():
    """The world's appeal is drawn against quality; a click reward learns appeal, the default
    reward (clicks the user walks away from cost 6) learns what users finish."""
    correlations = {}
    for penalty in (0.0, RLConfig().abandon_penalty):
        traj, world = small_world_log(seed=1, abandon_penalty=penalty)
        net, _ = fit_reinforce(traj, CFG, k=10)
        with torch.no_grad():
            logits = net.policy(net.encoder(torch.from_numpy(traj.history))).mean(dim=0).numpy()
        correlations[penalty] = (np.corrcoef(logits, world.quality)[0, 1], np.corrcoef(logits, world.appeal)[0, 1])
    (q_plain, a_plain), (q_penalty, a_penalty) = correlations.values()
    assert a_plain > 0.5 and q_plain < 0.1, correlations
    assert q_penalty > 0.3 and a_penalty < 0.1, correlations


def test_missing_propensities_use_the_behaviour_head_and_nan_is_refused():
    traj = small_log(days=2, users=150, propensities=False)
    assert traj.propensity_coverage == 0
    net, fit = fit_reinforce(traj, dataclasses.replace(CFG, epochs=2), k=10)
    assert np.isfinite(fit.loss).all()
    with torch.no_grad():
        net.policy.bias[0] = float("nan")
    with pytest.raises(ModelFitError):
        check_finite(net)
    empty = dataclasses.replace(traj, action=traj.action[:0], session_of=traj.session_of[:0])
    with pytest.raises(ModelFitError):
        fit_reinforce(empty, CFG, k=10)


def test_cql_loss_falls_and_next_sessions_link_each_user():
    from recsys.models.rl.cql import fit_cql

    traj = small_log(days=3, users=300)
    linked = traj.next_session[traj.next_session >= 0]
    assert np.all(traj.session_user[linked] == traj.session_user[traj.next_session >= 0])
    assert np.all(traj.session_day[linked] > traj.session_day[traj.next_session >= 0])
    net, fit = fit_cql(traj, dataclasses.replace(CFG, epochs=4), item_init=None)
    assert fit.loss[-1] < fit.loss[0]
    user_f, item_f = serving_factors(net, traj.history[:3], head="q")
    assert np.isfinite(user_f).all() and item_f.shape == (60, 9)


def test_behaviour_propensities_are_the_beta_the_loss_uses_where_none_is_logged():
    traj = small_log(days=2, users=150, propensities=False)
    net, _ = fit_reinforce(traj, dataclasses.replace(CFG, epochs=1), k=10)
    beta = behaviour_propensities(net, traj, chunk_sessions=7)  # chunks that split the log unevenly
    assert beta.shape == (traj.n,) and ((beta > 0) & (beta < 1)).all()
    sess = np.unique(traj.session_of)
    imp = np.arange(traj.n)
    with torch.no_grad():
        pi = torch.softmax(net.policy(net.encoder(torch.from_numpy(traj.history))), dim=1).numpy()[
            traj.session_of, traj.action]
        _, parts = reinforce_loss(net, traj, sess, imp, traj.session_of, CFG, 10)
    # the loss's capped pi / beta summed over the impressions, from the estimate given here
    assert parts["w_sum"] == pytest.approx(np.minimum(pi / beta, CFG.weight_cap).sum(), rel=1e-4)
    assert parts["w_max"] == pytest.approx(np.minimum(pi / beta, CFG.weight_cap).max(), rel=1e-4)
