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
