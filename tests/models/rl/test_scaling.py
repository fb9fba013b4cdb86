"""The scaled RL fit: session-level softmaxes give the per-impression loss, sampled epochs keep
the importance weights unbiased, and each epoch reports its diagnostics."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from recsys.config import RLConfig
from recsys.models.rl import reinforce
from recsys.models.rl.reinforce import (PolicyNet, capped_importance_weight, fit_reinforce, reinforce_loss,
                                        topk_correction)
from recsys.models.rl.training import epoch_sessions, session_batches
from recsys.models.rl.trajectories import Trajectories

N_ITEMS = 25
CFG = RLConfig(embedding_dim=6, hidden_dim=6, history_len=4, epochs=3, batch_sessions=16, learning_rate=0.01,
               sessions_per_epoch=0)


def tiny(n_sessions: int = 40, seed: int = 0, propensities: bool = True) -> Trajectories:
    rng = np.random.default_rng(seed)
    history = rng.integers(0, N_ITEMS + 1, (n_sessions, CFG.history_len))
    per_session = rng.integers(1, 6, n_sessions)
    session_of = np.repeat(np.arange(n_sessions), per_session)
    n = len(session_of)
    click = (rng.random(n) < 0.2).astype(np.float64)
    propensity = rng.uniform(0.05, 1.0, n) if propensities else np.full(n, np.nan)
    propensity[::5] = np.nan  # some impressions need the behaviour head
    return Trajectories(history=history, session_of=session_of, action=rng.integers(0, N_ITEMS, n),
                        reward=click * 3 - 0.5 + rng.normal(0, 0.1, n), click=click, propensity=propensity,
                        slate_size=per_session[session_of].astype(np.float64), session_user=np.arange(n_sessions) // 3,
                        session_day=np.zeros(n_sessions, np.int64), session_returned=np.zeros(n_sessions),
                        n_items=N_ITEMS)


def per_impression_loss(net, traj, sess, imp, local, config, k):  # noqa: ANN001, ANN201
    """The loss as it was computed before: one softmax over the catalogue per impression."""
    state_i = net.encoder(torch.from_numpy(traj.history[sess]))[torch.from_numpy(local)]
    action = torch.from_numpy(traj.action[imp])
    reward = torch.from_numpy(traj.reward[imp].astype(np.float32))
    log_pi = torch.log_softmax(net.policy(state_i), dim=1).gather(1, action[:, None]).squeeze(1)
    behaviour_logits = net.behaviour(state_i.detach())
    behaviour_ce = nn.functional.cross_entropy(behaviour_logits, action)
    value = net.value(state_i).squeeze(1)
    with torch.no_grad():
        pi = log_pi.exp()
        logged = torch.from_numpy(traj.propensity[imp] / traj.slate_size[imp]).float()
        learned = torch.softmax(behaviour_logits, dim=1).gather(1, action[:, None]).squeeze(1)
        beta = torch.where(torch.isfinite(logged), logged, learned).clamp_min(1e-6)
        weight = capped_importance_weight(pi, beta, config.weight_cap) * topk_correction(pi, k)
        advantage = reward - value
    actor = -(weight * advantage * log_pi).mean()
    critic = nn.functional.mse_loss(value, reward)
    return actor + config.value_loss_weight * critic + config.behaviour_loss_weight * behaviour_ce


def test_session_level_softmax_gives_the_per_impression_loss_and_gradients(monkeypatch):
    # the behaviour head on every session (in training, a quarter of a logged batch's)
    monkeypatch.setattr(reinforce, "BEHAVIOUR_FIT_SHARE", 1.0)
    traj = tiny()
    torch.manual_seed(0)
    net = PolicyNet(N_ITEMS, CFG)
    sess, imp, local, weight = next(session_batches(traj, 16, torch.Generator().manual_seed(1)))
    assert len(imp) > len(sess)  # several impressions per session, or the test shows nothing
    packed, parts = reinforce_loss(net, traj, sess, imp, local, CFG, k=3, sample_weight=weight)
    packed_grads = torch.autograd.grad(packed, list(net.parameters()), allow_unused=True)
    reference = per_impression_loss(net, traj, sess, imp, local, CFG, k=3)
    reference_grads = torch.autograd.grad(reference, list(net.parameters()), allow_unused=True)
    assert packed.item() == pytest.approx(reference.item(), rel=1e-5)
    for a, b in zip(packed_grads, reference_grads):
        if a is None or b is None:
            assert a is None and b is None
            continue
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_behaviour_head_always_fits_the_sessions_that_need_it():
    traj = tiny(propensities=False)
    torch.manual_seed(0)
    net = PolicyNet(N_ITEMS, CFG)
    sess, imp, local, weight = next(session_batches(traj, 16, torch.Generator().manual_seed(1)))
    _, parts = reinforce_loss(net, traj, sess, imp, local, CFG, k=3, sample_weight=weight)
    with torch.no_grad():
        state = net.encoder(torch.from_numpy(traj.history[sess]))
        expected = nn.functional.cross_entropy(net.behaviour(state)[torch.from_numpy(local)],
                                               torch.from_numpy(traj.action[imp]))
    assert parts["behaviour"] == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("budget", [30, 8])  # above the clicked sessions, then below them
def test_sampled_epochs_weight_sessions_by_their_inverse_inclusion_probability(budget):
    traj = tiny(n_sessions=40)
    clicked = np.bincount(traj.session_of, weights=traj.click, minlength=40) > 0
    assert 8 < clicked.sum() < 30
    values = np.random.default_rng(3).normal(size=40) + 5 * clicked  # any per-session term
    generator = torch.Generator().manual_seed(0)
    estimates, seen = [], np.zeros(40)
    for _ in range(4000):
        sessions, weights = epoch_sessions(traj, budget, generator)
        assert len(sessions) == budget and np.all(np.diff(sessions) > 0)
        if budget == 30:  # clicked sessions are always in, weight 1
            assert set(np.flatnonzero(clicked)) <= set(sessions.tolist())
            assert np.allclose(weights[clicked[sessions]], budget / 40)
        estimates.append(float((weights * values[sessions]).sum()) * 40 / budget)
        seen[sessions] += 1
    # unbiased: the weighted sum over the sample averages to the full sum (Horvitz-Thompson)
    assert np.mean(estimates) == pytest.approx(values.sum(), rel=0.01)
    assert seen.min() > 0  # every session is drawn in some epoch
    full, ones = epoch_sessions(traj, 0, generator)
    assert len(full) == 40 and np.all(ones == 1.0)


def test_fit_reports_diagnostics_and_sampling_changes_only_what_is_drawn():
    traj = tiny(n_sessions=120, seed=1)
    _, fit = fit_reinforce(traj, CFG, k=3)
    assert len(fit.diagnostics) == CFG.epochs
    for d in fit.diagnostics:
        assert 0 < d["weight_mean"] <= d["weight_max"] <= CFG.weight_cap
        assert 0 <= d["clipped_share"] <= 1 and 0 < d["ess_share"] <= 1
        assert 0 < d["entropy"] <= np.log(N_ITEMS) + 1e-6
    sampled = dataclasses.replace(CFG, sessions_per_epoch=60)
    _, fit_a = fit_reinforce(traj, sampled, k=3)
    _, fit_b = fit_reinforce(traj, sampled, k=3)
    assert fit_a.loss == fit_b.loss and fit_a.loss != fit.loss  # seeded, and a different sample
    assert all(np.isfinite(fit_a.loss))


def test_a_healthy_fit_runs_every_epoch():
    _, fit = fit_reinforce(tiny(n_sessions=120, seed=1), CFG, k=3)
    assert fit.stopped_early is None and fit.epochs_kept == CFG.epochs


def test_a_diverging_fit_stops_early_says_why_and_keeps_the_last_healthy_epoch():
    # a step size 30x the default with the cap lifted: the policy collapses onto a few items within a few epochs
    traj = tiny(n_sessions=120, seed=1)
    diverging = dataclasses.replace(CFG, epochs=8, learning_rate=0.3, weight_cap=1e4)
    net, fit = fit_reinforce(traj, diverging, k=3)
    assert fit.stopped_early is not None and "entropy" in fit.stopped_early, fit.stopped_early
    assert 0 < fit.epochs_kept < diverging.epochs
    assert len(fit.diagnostics) == fit.epochs_kept + 1  # the diverged epoch's figures say why
    assert fit.diagnostics[-1]["entropy"] < diverging.stop_min_entropy_share * np.log(N_ITEMS)
    # the returned parameters are those after the last healthy epoch: the same seeded fit run for that many epochs
    unchecked = dataclasses.replace(diverging, epochs=fit.epochs_kept, stop_min_ess_share=0.0, stop_min_entropy_share=0.0)
    reference, reference_fit = fit_reinforce(traj, unchecked, k=3)
    assert reference_fit.stopped_early is None
    for (name, got), want in zip(net.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(got, want), name


def test_the_stop_rules_read_the_effective_sample_size_and_the_entropy():
    from recsys.models.rl.training import divergence_reason
    healthy = {"ess_share": 0.6, "entropy": 3.0, "clipped_share": 0.3}
    assert divergence_reason(healthy, CFG, N_ITEMS) is None
    assert "effective sample size" in divergence_reason({**healthy, "ess_share": 0.01}, CFG, N_ITEMS)
    assert "entropy" in divergence_reason({**healthy, "entropy": 0.1}, CFG, N_ITEMS)
    off = dataclasses.replace(CFG, stop_min_ess_share=0.0, stop_min_entropy_share=0.0)
    assert divergence_reason({**healthy, "ess_share": 0.001, "entropy": 0.0}, off, N_ITEMS) is None
    with pytest.raises(ValueError, match="RECSYS_RL_STOP_MIN_ESS_SHARE"):
        RLConfig(stop_min_ess_share=1.5)
