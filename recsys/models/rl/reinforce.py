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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from recsys.config import RLConfig
from recsys.errors import ModelFitError
from recsys.models.rl.encoders import make_encoder
from recsys.models.rl.trajectories import Trajectories

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


@dataclass
class FitResult:
    """Per-epoch mean losses (total and parts) and how beta was obtained."""

    loss: list[float] = field(default_factory=list)
    actor: list[float] = field(default_factory=list)
    critic: list[float] = field(default_factory=list)
    behaviour: list[float] = field(default_factory=list)
    propensity_coverage: float = 0.0
    seconds: float = 0.0


def session_batches(traj: Trajectories, batch_sessions: int, generator: torch.Generator):
    """Yield (session ids, impression indices, position of each impression's session in the batch)."""
    sessions = np.unique(traj.session_of)
    starts = np.searchsorted(traj.session_of, sessions, side="left")
    ends = np.searchsorted(traj.session_of, sessions, side="right")
    order = torch.randperm(len(sessions), generator=generator).numpy()
    for lo in range(0, len(order), batch_sessions):
        pick = order[lo:lo + batch_sessions]
        lengths = ends[pick] - starts[pick]
        local = np.repeat(np.arange(len(pick)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        yield sessions[pick], np.repeat(starts[pick], lengths) + offsets, local


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


@contextmanager
def fit_setup(traj: Trajectories, config: RLConfig) -> Iterator[None]:
    """What both RL learners' fits need around them: refuse a log without impressions,
    seed torch, and run on `config.num_threads` (1 when 0) threads, restoring the caller's.

    Raises:
        ModelFitError: no logged impressions to learn from.
    """
    if traj.n == 0:
        raise ModelFitError("no logged impressions in the window: the RL recommenders need impressions")
    torch.manual_seed(config.seed)
    previous_threads = torch.get_num_threads()
    # small networks: a second thread costs more in synchronisation than it gains
    torch.set_num_threads(config.num_threads if config.num_threads > 0 else 1)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)


def run_epoch(net: nn.Module, optimiser: torch.optim.Optimizer, batches, loss_of,  # noqa: ANN001
              names: tuple[str, ...], label: str, epoch: int) -> dict[str, float]:
    """One epoch of gradient steps, shared by the RL learners; returns each loss part's mean.

    `batches` yields (sessions, impressions, local index) as `session_batches` does;
    `loss_of(sess, imp, local)` returns (loss tensor, {part name: float}).

    Raises:
        ModelFitError: the loss turned NaN or infinite.
    """
    sums, count = dict.fromkeys(names, 0.0), 0
    for sess, imp, local in batches:
        loss, parts = loss_of(sess, imp, local)
        if not torch.isfinite(loss):
            raise ModelFitError(f"{label} loss became {float(loss)} in epoch {epoch}")
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimiser.step()
        sums["loss"] += loss.item()
        for name, value in parts.items():
            sums[name] += value
        count += 1
    return {name: total / max(count, 1) for name, total in sums.items()}


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


def check_finite(net: nn.Module) -> None:
    """Raise ModelFitError when any parameter is NaN or infinite (never save such a model)."""
    for name, param in net.named_parameters():
        if not torch.isfinite(param).all():
            raise ModelFitError(f"parameter {name} holds {int((~torch.isfinite(param)).sum())} NaN/inf values")


def serving_factors(net: PolicyNet, histories: np.ndarray, head: str = "policy") -> tuple[np.ndarray, np.ndarray]:
    """(n_users, h + 1) user factors and (n_items, h + 1) item factors whose dot product is
    the head's logit: [state, 1] . [W_a, b_a], so MF's top-K scoring serves the policy.

    Runs in eval mode (dropout off, so serving is deterministic) and restores the
    network's mode afterwards."""
    layer = getattr(net, head)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            states = torch.cat([net.encoder(torch.from_numpy(histories[lo:lo + 4096]))
                                for lo in range(0, len(histories), 4096)]) if len(histories) else \
                torch.zeros((0, layer.in_features))
            user = torch.cat([states, torch.ones(len(states), 1)], dim=1)
            item = torch.cat([layer.weight, layer.bias[:, None]], dim=1)
    finally:
        net.train(was_training)
    return user.numpy().astype(np.float32), item.numpy().astype(np.float32)
