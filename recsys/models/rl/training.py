"""What both RL learners (`reinforce`, `cql`) share: minibatches of whole sessions, the seeded
single-threaded fit around them, one epoch of clipped gradient steps, the NaN check, and the
serving projection that lets MF's top-K scoring rank items by a head's logit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from recsys.config import RLConfig
from recsys.errors import ModelFitError
from recsys.models.rl.trajectories import Trajectories


@dataclass
class FitResult:
    """Per-epoch mean losses (total and parts) and how beta was obtained."""

    loss: list[float] = field(default_factory=list)
    actor: list[float] = field(default_factory=list)
    critic: list[float] = field(default_factory=list)
    behaviour: list[float] = field(default_factory=list)
    propensity_coverage: float = 0.0
    seconds: float = 0.0
    diagnostics: list[dict[str, float]] = field(default_factory=list)  # per epoch, `epoch_diagnostics`
    stopped_early: str | None = None  # why the fit stopped before its last epoch (`divergence_reason`)
    epochs_kept: int = 0  # epochs whose parameters the returned network holds


def epoch_diagnostics(parts: dict[str, float]) -> dict[str, float]:
    """What tells a healthy off-policy fit from a diverging one, from one epoch's summed parts.

    Over the epoch's impressions, w = min(pi(a|s) / beta(a|s), cap), the ratio the actor
    loss is weighted by (before the top-K factor):
    `weight_mean` (about 1 while pi stays on the log's support: E_beta[pi / beta] = 1;
    below 1 when pi moves mass to items the log rarely shows), `weight_max`, `clipped_share`
    (share of impressions whose ratio reached the cap), `ess_share` (Kish's effective
    sample size (sum w)^2 / sum w^2 over the number of impressions: 1 when every weight
    is equal, near 0 when a few impressions carry the epoch), `entropy` (mean entropy of
    pi over the epoch's sessions, nats; log(n_items) is uniform, 0 one item for everyone).
    """
    n = max(parts["n_sum"], 1.0)
    return {"weight_mean": parts["w_sum"] / n, "weight_max": parts["w_max"], "clipped_share": parts["clipped_sum"] / n,
            "ess_share": parts["w_sum"] ** 2 / max(parts["w_sq_sum"], 1e-12) / n,
            "entropy": parts["entropy_sum"] / max(parts["sessions_sum"], 1.0),
            "actor": parts["actor"], "critic": parts["critic"], "behaviour": parts["behaviour"]}


def divergence_reason(diag: dict[str, float], config: RLConfig, n_items: int) -> str | None:
    """Why an epoch's diagnostics say the off-policy fit is diverging, or None when healthy.

    Two rules, each off at 0 (docs/rl-training.md, "Reading an epoch's diagnostics"):
    the effective sample size of the epoch's importance weights below
    `config.stop_min_ess_share` of its impressions (a few impressions carry the gradient,
    so the step follows noise), and the policy's entropy below `config.stop_min_entropy_share`
    of the uniform policy's log(n_items) (a collapse onto a few items for everyone). The
    healthy fits measured sit far from both (ESS 55-65 %, entropy above 90 % of uniform on
    the simulated log).
    """
    if config.stop_min_ess_share > 0 and diag["ess_share"] < config.stop_min_ess_share:
        return (f"effective sample size of pi/beta fell to {100 * diag['ess_share']:.2f}% of the epoch's "
                f"impressions (below RECSYS_RL_STOP_MIN_ESS_SHARE={config.stop_min_ess_share:g}); "
                f"{100 * diag['clipped_share']:.1f}% of the weights at the cap {config.weight_cap:g}")
    uniform = float(np.log(max(n_items, 2)))
    if config.stop_min_entropy_share > 0 and diag["entropy"] < config.stop_min_entropy_share * uniform:
        return (f"policy entropy fell to {diag['entropy']:.3f} nats, {100 * diag['entropy'] / uniform:.1f}% of the "
                f"uniform policy's {uniform:.2f} (below RECSYS_RL_STOP_MIN_ENTROPY_SHARE="
                f"{config.stop_min_entropy_share:g}): a collapse onto a few items")
    return None


def epoch_sessions(traj: Trajectories, sessions_per_epoch: int, generator: torch.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The sessions one epoch trains on and each one's weight, 1 / its inclusion probability.

    `sessions_per_epoch` <= 0, or at least the log's sessions: every session, weight 1.
    Otherwise a stratified sample of that many: sessions holding a click are kept whole
    (they carry most of the reward signal), and the others are drawn uniformly without
    replacement to fill the budget, each with weight n_other / n_drawn; when the clicked
    sessions alone exceed the budget, all sessions are drawn uniformly, weight
    n_sessions / budget; all weights are then multiplied by m / n_sessions (m drawn), so they
    average about 1. So n_sessions / m times the weighted sum of any per-impression term
    over the sample is an unbiased estimate of its sum over the whole log (Horvitz-Thompson),
    and each epoch draws afresh, so the epochs together see more of the log than one.

    Returns:
        (sessions, weights): (m,) session indices in ascending order, (m,) float64.
    """
    sessions = np.unique(traj.session_of)
    n = len(sessions)
    if sessions_per_epoch <= 0 or sessions_per_epoch >= n:
        return sessions, np.ones(n)
    clicked_by_session = np.bincount(traj.session_of, weights=traj.click, minlength=int(sessions.max()) + 1)
    clicked = clicked_by_session[sessions] > 0
    if clicked.sum() <= sessions_per_epoch:
        keep, rest = sessions[clicked], sessions[~clicked]
        m = min(sessions_per_epoch - len(keep), len(rest))
        drawn = rest[torch.randperm(len(rest), generator=generator).numpy()[:m]]
        picked = np.r_[keep, drawn]
        weights = np.r_[np.ones(len(keep)), np.full(m, len(rest) / max(m, 1))]
    else:
        picked = sessions[torch.randperm(n, generator=generator).numpy()[:sessions_per_epoch]]
        weights = np.full(sessions_per_epoch, n / sessions_per_epoch)
    order = np.argsort(picked)
    # scaled by m / n so they average about 1: the loss keeps the scale of an unsampled epoch
    # (the weighted mean over the sample estimates the mean over the log), and its logged parts too
    return picked[order], weights[order] * (len(picked) / n)


def session_batches(traj: Trajectories, batch_sessions: int, generator: torch.Generator,
                    sessions: np.ndarray | None = None, weights: np.ndarray | None = None):
    """Yield (session ids, impression indices, position of each impression's session in the batch,
    each impression's sample weight) over `sessions` (default: all) in a seeded random order.

    `weights` (one per session, as `epoch_sessions` gives) become the impressions' weights;
    without them every weight is 1."""
    if sessions is None:
        sessions = np.unique(traj.session_of)
    if weights is None:
        weights = np.ones(len(sessions))
    starts = np.searchsorted(traj.session_of, sessions, side="left")
    ends = np.searchsorted(traj.session_of, sessions, side="right")
    order = torch.randperm(len(sessions), generator=generator).numpy()
    for lo in range(0, len(order), batch_sessions):
        pick = order[lo:lo + batch_sessions]
        lengths = ends[pick] - starts[pick]
        local = np.repeat(np.arange(len(pick)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        yield sessions[pick], np.repeat(starts[pick], lengths) + offsets, local, np.repeat(weights[pick], lengths)


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
    """One epoch of gradient steps, shared by the RL learners; returns each loss part's mean
    over the batches, except parts named `*_sum` (added up) and `*_max` (the largest).

    `batches` yields (sessions, impressions, local index, sample weight) as `session_batches`
    does; `loss_of(sess, imp, local, weight)` returns (loss tensor, {part name: float}).

    Raises:
        ModelFitError: the loss turned NaN or infinite.
    """
    sums, count = dict.fromkeys(names, 0.0), 0
    for sess, imp, local, weight in batches:
        loss, parts = loss_of(sess, imp, local, weight)
        if not torch.isfinite(loss):
            raise ModelFitError(f"{label} loss became {float(loss)} in epoch {epoch}")
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimiser.step()
        sums["loss"] += loss.item()
        for name, value in parts.items():
            sums[name] = max(sums.get(name, value), value) if name.endswith("_max") else sums.get(name, 0.0) + value
        count += 1
    return {name: total if name.endswith(("_sum", "_max")) else total / max(count, 1) for name, total in sums.items()}


def check_finite(net: nn.Module) -> None:
    """Raise ModelFitError when any parameter is NaN or infinite (never save such a model)."""
    for name, param in net.named_parameters():
        if not torch.isfinite(param).all():
            raise ModelFitError(f"parameter {name} holds {int((~torch.isfinite(param)).sum())} NaN/inf values")


def serving_factors(net: nn.Module, histories: np.ndarray, head: str = "policy") -> tuple[np.ndarray, np.ndarray]:
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
