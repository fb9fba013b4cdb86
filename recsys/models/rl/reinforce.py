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

import logging
import time

import numpy as np
import torch
from torch import nn

from recsys.config import RLConfig
from recsys.models.rl.encoders import make_encoder
from recsys.models.rl.trajectories import Trajectories
from recsys.models.rl.training import FitResult, check_finite, fit_setup, run_epoch, session_batches

logger = logging.getLogger(__name__)


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
                   config: RLConfig, k: int) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one minibatch (see the module docstring)."""
    state = net.encoder(torch.from_numpy(traj.history[sess]))
    state_i = state[torch.from_numpy(local)]
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
    total = actor + config.value_loss_weight * critic + config.behaviour_loss_weight * behaviour_ce
    return total, {"actor": actor.item(), "critic": critic.item(), "behaviour": behaviour_ce.item()}


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
    for epoch in range(config.epochs):
        means = run_epoch(net, optimiser, session_batches(traj, config.batch_sessions, generator),
                          lambda sess, imp, local: reinforce_loss(net, traj, sess, imp, local, config, k),
                          ("loss", "actor", "critic", "behaviour"), "REINFORCE", epoch)
        for name, mean in means.items():
            getattr(result, name).append(mean)
        logger.info("REINFORCE epoch %d: loss %.4f (actor %.4f, critic %.4f, behaviour %.4f)", epoch,
                    result.loss[-1], result.actor[-1], result.critic[-1], result.behaviour[-1])
    check_finite(net)
    result.seconds = time.perf_counter() - started
    return net.eval(), result
