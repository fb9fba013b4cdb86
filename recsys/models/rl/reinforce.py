"""REINFORCE with top-K off-policy correction (Chen et al., "Top-K Off-Policy Correction
for a REINFORCE Recommender System", WSDM 2019), as an advantage actor-critic.

State s: an encoder of the user's recent positive items (item embeddings, optionally
initialised from MF item factors): a GRU or SASRec self-attention, `RLConfig.encoder`
(`recsys.models.rl.encoders`). Policy pi(a|s) = softmax(W h_s + b) over all items.
Critic V(s) (a linear head) is the baseline; behaviour head beta_theta(a|s) = softmax of
its own linear head on the state with the gradient into the state blocked, as in the paper.

For a logged impression (s, a, R) the actor loss is
    - min(pi(a|s) / beta(a|s), cap) * lambda_K(s, a) * (R - V(s)) * log pi(a|s),
    lambda_K(s, a) = K * (1 - pi(a|s))^(K - 1)   (d/dpi of 1 - (1 - pi)^K, the probability
                                                    that a K-draw slate holds a),
with pi, the weight and the advantage treated as constants (no gradient). beta is the
logged propensity divided by the session's slate size where it was logged (the log
holds inclusion probabilities P(a in slate); one of a K-item slate's impressions is
item a with probability P(a in slate) / K), otherwise the behaviour head's estimate. The critic minimises
(R - V(s))^2 and the behaviour head the cross-entropy of the logged actions. Total loss
= actor + value_loss_weight * critic + behaviour_loss_weight * behaviour.

Deterministic for a seed on CPU: seeded init, dropout and minibatch order, single-process
data. The fitted network is returned in eval mode (no dropout) and `serving_factors`
always scores in eval mode.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
import torch
from torch import nn

from recsys.config import RLConfig
from recsys.models.rl.encoders import make_encoder
from recsys.models.rl.trajectories import Trajectories
from recsys.models.rl.training import (FitResult, check_finite, divergence_reason, epoch_diagnostics, epoch_sessions,
                                      fit_setup, run_epoch, session_batches)

logger = logging.getLogger(__name__)

BEHAVIOUR_FIT_SHARE = 0.25  # share of a batch's sessions the behaviour head fits on where propensities are logged
ENTROPY_ROWS = 32  # sessions per batch whose policy entropy the diagnostics average


def topk_correction(pi: torch.Tensor, k: int) -> torch.Tensor:
    """lambda_K = K * (1 - pi)^(K - 1): 1 for K = 1; about K for a tiny pi; 0 at pi = 1."""
    return k * torch.pow(1.0 - pi, k - 1)


def capped_importance_weight(pi: torch.Tensor, beta: torch.Tensor, cap: float) -> torch.Tensor:
    """min(pi / beta, cap), elementwise."""
    return torch.clamp(pi / beta, max=cap)


class PolicyNet(nn.Module):
    """Encoder + policy, value and behaviour heads."""

    def __init__(self, n_items: int, config: RLConfig, item_init: np.ndarray | None = None) -> None:
        super().__init__()
        self.encoder = make_encoder(n_items, config, item_init)
        self.policy = nn.Linear(config.hidden_dim, n_items)
        self.value = nn.Linear(config.hidden_dim, 1)
        self.behaviour = nn.Linear(config.hidden_dim, n_items)


def reinforce_loss(net: PolicyNet, traj: Trajectories, sess: np.ndarray, imp: np.ndarray, local: np.ndarray,
                   config: RLConfig, k: int, sample_weight: np.ndarray | None = None
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one minibatch (see the module docstring) and its diagnostics.

    Every impression of a session shares the session's state, so the policy and behaviour
    heads' softmaxes over the catalogue are taken once per session, (B_sessions, n_items),
    and each impression reads its action's entry: the same loss as one softmax per
    impression at a slate size's fraction of the cost (the heads were ~90% of an epoch).
    `sample_weight` (n_imp,): 1 / the impression's session's inclusion probability when the
    epoch samples sessions (`training.epoch_sessions`); each term is a weighted mean.
    """
    state = net.encoder(torch.from_numpy(traj.history[sess]))
    rows = torch.from_numpy(local)
    action = torch.from_numpy(traj.action[imp])
    reward = torch.from_numpy(traj.reward[imp].astype(np.float32))
    log_pi_all = torch.log_softmax(net.policy(state), dim=1)  # (B_sessions, n_items)
    log_pi = log_pi_all[rows, action]
    value = net.value(state).squeeze(1)[rows]
    sw = torch.ones(len(imp)) if sample_weight is None else torch.from_numpy(sample_weight.astype(np.float32))
    logged_np = traj.propensity[imp] / traj.slate_size[imp]
    missing = ~np.isfinite(logged_np)
    # The behaviour head's estimate is used only where no propensity was logged, and its input
    # is detached, so on logged sessions it just keeps learning its own fit: a random share of
    # the batch (the batch order is random) is enough there, at that share of its softmax's cost.
    fit_rows = np.zeros(len(sess), dtype=bool)
    fit_rows[:max(1, int(np.ceil(BEHAVIOUR_FIT_SHARE * len(sess))))] = True
    fit_rows[local[missing]] = True
    b_rows = np.flatnonzero(fit_rows)
    position = np.full(len(sess), -1, dtype=np.int64)
    position[b_rows] = np.arange(len(b_rows))
    b_imp = np.flatnonzero(fit_rows[local])
    log_beta = torch.log_softmax(net.behaviour(state.detach()[torch.from_numpy(b_rows)]), dim=1)[
        torch.from_numpy(position[local[b_imp]]), action[b_imp]]
    behaviour_ce = -(sw[b_imp] * log_beta).sum() / max(len(b_imp), 1)
    with torch.no_grad():
        pi = log_pi.exp()
        learned = torch.ones(len(imp))
        learned[torch.from_numpy(b_imp)] = log_beta.exp()
        beta = torch.where(torch.from_numpy(missing), learned, torch.from_numpy(logged_np).float()).clamp_min(1e-6)
        ratio = pi / beta
        weight = capped_importance_weight(pi, beta, config.weight_cap) * topk_correction(pi, k)
        advantage = reward - value
        head = log_pi_all[:ENTROPY_ROWS]  # a diagnostic: a few random sessions per batch are enough
        entropy = -(head.exp() * head).sum(dim=1)
    actor = -(sw * weight * advantage * log_pi).mean()
    critic = (sw * (value - reward) ** 2).mean()
    total = actor + config.value_loss_weight * critic + config.behaviour_loss_weight * behaviour_ce
    capped = torch.clamp(ratio, max=config.weight_cap)
    return total, {"actor": actor.item(), "critic": critic.item(), "behaviour": behaviour_ce.item(),
                   # sums over the epoch's impressions (run_epoch adds them; `_fit` turns them into figures)
                   "n_sum": float(len(imp)), "w_sum": float(capped.sum()), "w_sq_sum": float((capped ** 2).sum()),
                   "clipped_sum": float((ratio > config.weight_cap).sum()), "w_max": float(capped.max()),
                   "entropy_sum": float(entropy.sum()), "sessions_sum": float(len(entropy))}


def behaviour_propensities(net: PolicyNet, traj: Trajectories, chunk_sessions: int = 4096) -> np.ndarray:
    """The behaviour head's beta(a|s) of each logged impression's action, (n,) float64.

    This is the figure `reinforce_loss` puts in place of a missing propensity: the softmax
    of the behaviour head over the catalogue at the impression's session state, read at the
    shown item, so it is on the per-impression scale (the share of a slate's impressions
    that are item a, P(a in slate) / K). Multiply by `traj.slate_size` for the scale the log's
    propensity column is read on (an inclusion probability P(a in slate)). Computed without
    gradients and in eval mode (no dropout), restoring the network's mode afterwards.
    """
    out = np.empty(traj.n, dtype=np.float64)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for lo in range(0, len(traj.history), chunk_sessions):
                hi = min(lo + chunk_sessions, len(traj.history))
                first, last = np.searchsorted(traj.session_of, [lo, hi])
                if first == last:
                    continue
                state = net.encoder(torch.from_numpy(traj.history[lo:hi]))
                log_beta = torch.log_softmax(net.behaviour(state), dim=1)
                rows = torch.from_numpy(traj.session_of[first:last] - lo)
                out[first:last] = log_beta[rows, torch.from_numpy(traj.action[first:last])].exp().numpy()
    finally:
        net.train(was_training)
    return out


def fit_reinforce(traj: Trajectories, config: RLConfig, k: int, item_init: np.ndarray | None = None) -> tuple[PolicyNet, FitResult]:
    """Train the actor-critic on the logged examples.

    Raises:
        ModelFitError: no impressions to learn from, or a loss / parameter turned NaN.
    """
    started = time.perf_counter()
    with fit_setup(traj, config):
        return _fit(traj, config, k, item_init, started)


def _fit(traj: Trajectories, config: RLConfig, k: int, item_init: np.ndarray | None,
         started: float) -> tuple[PolicyNet, FitResult]:
    net = PolicyNet(traj.n_items, config, item_init)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    result = FitResult(propensity_coverage=traj.propensity_coverage)
    if result.propensity_coverage < 1.0:
        logger.warning("%.1f%% of impressions lack a logged propensity: the behaviour head estimates beta there",
                       100 * (1 - result.propensity_coverage))
    healthy = None  # the parameters after the last epoch whose diagnostics were healthy
    for epoch in range(config.epochs):
        sessions, weights = epoch_sessions(traj, config.sessions_per_epoch, generator)
        means = run_epoch(net, optimiser, session_batches(traj, config.batch_sessions, generator, sessions, weights),
                          lambda sess, imp, local, w: reinforce_loss(net, traj, sess, imp, local, config, k, w),
                          ("loss", "actor", "critic", "behaviour"), "REINFORCE", epoch)
        for name in ("loss", "actor", "critic", "behaviour"):
            getattr(result, name).append(means[name])
        diag = epoch_diagnostics(means)
        result.diagnostics.append(diag)
        reason = divergence_reason(diag, config, traj.n_items)
        logger.info("REINFORCE epoch %d (%d sessions, %.1f s): loss %.4f (actor %.4f, critic %.4f, behaviour %.4f); "
                    "pi/beta capped at %g: mean %.3f, max %.2f, clipped %.2f%%, ESS %.1f%%; policy entropy %.2f nats "
                    "(uniform %.2f)", epoch, len(sessions), time.perf_counter() - started, result.loss[-1],
                    result.actor[-1], result.critic[-1], result.behaviour[-1], config.weight_cap, diag["weight_mean"],
                    diag["weight_max"], 100 * diag["clipped_share"], 100 * diag["ess_share"], diag["entropy"],
                    np.log(traj.n_items))
        if reason is not None:
            result.stopped_early = f"epoch {epoch}: {reason}"
            if healthy is not None:  # keep the last healthy epoch's parameters, not the diverged step
                net.load_state_dict(healthy)
            result.epochs_kept = epoch if healthy is not None else 1  # the first epoch's, when it already fails
            logger.warning("REINFORCE stopped early after epoch %d of %d, keeping the parameters after %d epoch(s): %s",
                           epoch, config.epochs, result.epochs_kept, reason)
            break
        healthy = copy.deepcopy(net.state_dict())
        result.epochs_kept = epoch + 1
    check_finite(net)
    result.seconds = time.perf_counter() - started
    return net.eval(), result
