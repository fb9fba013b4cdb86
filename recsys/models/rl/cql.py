"""Discrete-action conservative Q-learning (CQL(H), Kumar et al., NeurIPS 2020) over the
same state encoder as REINFORCE (GRU or SASRec, `RLConfig.encoder`): the value-based
learner to compare with.

Q(s, .) = W h_s + b over all items. For a logged impression (s, a) of session t with
reward r = immediate + retention_weight * returned_t (immediate: the same click,
consumption and abandonment terms as REINFORCE's reward, `Trajectories.immediate`) and
the user's next session state s' (none after the last), the TD target is
    y = r + gamma * max_a' Q_target(s', a')      (y = r when t is the user's last session),
with Q_target a copy of the network refreshed at each epoch. The loss is
    (Q(s, a) - y)^2 + cql_alpha * (logsumexp_a' Q(s, a') - Q(s, a)),
whose second term pushes down the values of actions the log never took, so the greedy
policy stays near the data. The policy served is greedy in Q (top-K by Q). The target
network runs in eval mode (no dropout in the bootstrap), and the fitted network is
returned in eval mode.
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
from recsys.models.rl.training import FitResult, check_finite, fit_setup, run_epoch, session_batches
from recsys.models.rl.trajectories import Trajectories

logger = logging.getLogger(__name__)


class QNet(nn.Module):
    def __init__(self, n_items: int, config: RLConfig, item_init: np.ndarray | None = None) -> None:
        super().__init__()
        self.encoder = make_encoder(n_items, config, item_init)
        self.q = nn.Linear(config.hidden_dim, n_items)


def cql_loss(net: QNet, target: QNet, traj: Trajectories, sess: np.ndarray, imp: np.ndarray, local: np.ndarray,
             config: RLConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one minibatch. Q(s, .) and its logsumexp are taken once per session (an
    impression shares its session's state), then read per impression."""
    q_sess = net.q(net.encoder(torch.from_numpy(traj.history[sess])))  # (B_sessions, n_items)
    rows = torch.from_numpy(local)
    action = torch.from_numpy(traj.action[imp])
    q_taken = q_sess[rows, action]
    immediate = traj.immediate[imp] if traj.immediate is not None else traj.click[imp]  # hand-built: clicks
    reward = torch.from_numpy((immediate + traj.session_reward[traj.session_of[imp]]).astype(np.float32))
    nxt = traj.next_session[sess]
    with torch.no_grad():
        bootstrap = torch.zeros(len(sess))
        has = nxt >= 0
        if has.any():
            q_next = target.q(target.encoder(torch.from_numpy(traj.history[nxt[has]])))
            bootstrap[torch.from_numpy(has)] = q_next.max(dim=1).values
        y = reward + config.gamma * bootstrap[rows]
    td = nn.functional.mse_loss(q_taken, y)
    conservative = (torch.logsumexp(q_sess, dim=1)[rows] - q_taken).mean()
    return td + config.cql_alpha * conservative, {"critic": td.item(), "actor": conservative.item()}


def fit_cql(traj: Trajectories, config: RLConfig, item_init: np.ndarray | None = None) -> tuple[QNet, FitResult]:
    """Train the conservative Q-network; `FitResult.critic` holds the TD loss, `.actor` the penalty.

    Raises:
        ModelFitError: no impressions, or a loss / parameter turned NaN.
    """
    started = time.perf_counter()
    with fit_setup(traj, config):
        net = QNet(traj.n_items, config, item_init)
        optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
        generator = torch.Generator().manual_seed(config.seed)
        result = FitResult(propensity_coverage=traj.propensity_coverage)
        for epoch in range(config.epochs):
            target = copy.deepcopy(net).eval()
            means = run_epoch(net, optimiser, session_batches(traj, config.batch_sessions, generator),
                              # CQL trains on every session: its batches' sample weights are all 1
                              lambda sess, imp, local, _weight, target=target: cql_loss(
                                  net, target, traj, sess, imp, local, config),
                              ("loss", "critic", "actor"), "CQL", epoch)
            for name, mean in means.items():
                getattr(result, name).append(mean)
            logger.info("CQL epoch %d: loss %.4f (TD %.4f, conservative %.4f)", epoch, result.loss[-1],
                        result.critic[-1], result.actor[-1])
        result.epochs_kept = config.epochs  # no off-policy weights to diverge: CQL never stops early
        check_finite(net)
    result.seconds = time.perf_counter() - started
    return net.eval(), result
