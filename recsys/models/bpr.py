"""Bayesian Personalised Ranking in PyTorch (Rendle et al., UAI 2009).

Objective, over triples (u, i, j) of a user, an item u interacted with and a
sampled item u did not interact with:

    max  sum ln sigma(x_u . y_i + b_i - x_u . y_j - b_j) - lambda (|x_u|^2 + |y_i|^2 + |y_j|^2)

optimised by stochastic gradient ascent on mini-batches of triples. As in
`implicit`, each epoch draws nnz triples: (u, i) uniformly from the stored
interactions and j as the item of another uniformly drawn interaction (so
negatives follow item popularity); a triple whose j the user did interact
with is skipped. The gradients of a batch are summed into the factors with
`index_add_` (sequential per row on CPU, so a seed gives the same model).

The item bias b_i is kept as an extra factor column, with a matching column
of ones on the user side, so scores stay plain dot products: the returned
factors have `factors + 1` columns.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
import torch

from recsys.config import BPRConfig
from recsys.errors import ModelFitError
from recsys.models.common import check_finite, check_interactions, effective_factors, set_threads, start_factors

logger = logging.getLogger(__name__)


def fit_bpr(user_items: sp.spmatrix, config: BPRConfig,
            initial: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fit BPR factors.

    Args:
        user_items: (n_users, n_items) sparse interaction strengths; only
            which entries are positive matters.
        config: hyper-parameters; `seed` makes the result deterministic on CPU.
        initial: optional warm start (user_factors, item_factors) in the
            returned layout, (n_users, f + 1) and (n_items, f + 1).

    Returns:
        (user_factors (n_users, f + 1), item_factors (n_items, f + 1)) float32;
        the last user column is 1 and the last item column the item bias.

    Raises:
        ModelFitError: invalid config or input, or NaN factors.
    """
    if config.learning_rate <= 0 or config.regularization < 0 or config.iterations < 0 or config.batch_size < 1:
        raise ModelFitError(f"BPR needs learning_rate > 0, regularization >= 0, iterations >= 0: {config}")
    matrix = check_interactions(user_items, "BPR")
    n_users, n_items = matrix.shape
    if n_items < 2:
        raise ModelFitError("BPR needs at least two items: with one there is nothing to rank against")
    factors = effective_factors(config.factors, matrix.shape, "BPR")
    threads = set_threads(config.num_threads, matrix.nnz)
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    # centred start of scale 1/f as in `implicit`: the tiny positive start ALS uses leaves the
    # BPR gradients (proportional to the other side's factors) too small to move for many epochs
    users = start_factors(None if initial is None else initial[0], n_users, factors + 1, generator, "user factors",
                          scale=1.0 / factors, centred=True)
    items = start_factors(None if initial is None else initial[1], n_items, factors + 1, generator, "item factors",
                          scale=1.0 / factors, centred=True)
    users[:, -1] = 1.0
    if initial is None:
        items[:, -1] = 0.0
    indptr = torch.from_numpy(matrix.indptr.astype(np.int64))
    cols = torch.from_numpy(matrix.indices.astype(np.int64))
    key_dtype = torch.int32 if n_users * n_items < 2**31 else torch.int64
    rows = torch.repeat_interleave(torch.arange(n_users, dtype=key_dtype), torch.diff(indptr))
    keys = rows * n_items + cols.to(key_dtype)  # sorted: CSR rows are sorted, and so are columns within a row
    del rows
    nnz = len(cols)
    losses = []
    for epoch in range(config.iterations):
        total, counted = 0.0, 0
        for lo in range(0, nnz, config.batch_size):
            size = min(config.batch_size, nnz - lo)
            pos = torch.randint(nnz, (size,), generator=generator)
            u = torch.searchsorted(indptr, pos, right=True) - 1
            i = cols[pos]
            j = cols[torch.randint(nnz, (size,), generator=generator)]
            neg_key = u.to(key_dtype) * n_items + j.to(key_dtype)
            where = torch.searchsorted(keys, neg_key).clamp_max_(nnz - 1)
            valid = keys[where] != neg_key  # j is not one of u's items
            loss, n = _sgd_step(users, items, u[valid], i[valid], j[valid], config)
            total, counted = total + loss, counted + n
        losses.append(total / max(counted, 1))
        if not np.isfinite(losses[-1]):
            raise ModelFitError(f"BPR diverged to NaN/inf at epoch {epoch}")
    check_finite("BPR", users, items)
    logger.info("BPR fit %dx%d, nnz=%d, %d factors, %d epochs, %d threads in %.2fs; loss %s", n_users, n_items,
                nnz, factors, config.iterations, threads, time.perf_counter() - started,
                " -> ".join(f"{x:.4f}" for x in losses[:1] + losses[-1:]))
    fit_bpr.last_losses = losses  # type: ignore[attr-defined]  # read by tests and the benchmark
    return users.numpy(), items.numpy()


def _sgd_step(users: torch.Tensor, items: torch.Tensor, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
              config: BPRConfig) -> tuple[float, int]:
    """One ascent step on a batch of triples; returns (sum of -ln sigma(x_uij), batch size)."""
    xu, yi, yj = users.index_select(0, u), items.index_select(0, i), items.index_select(0, j)
    diff = yi - yj  # the bias difference sits in the last column, against the user's column of ones
    z = torch.linalg.vecdot(xu, diff)
    g = torch.sigmoid(-z)[:, None]  # d ln sigma(z) / dz
    lr, reg = config.learning_rate, config.regularization
    grad_u = torch.addcmul(xu * -reg, g, diff)
    grad_u[:, -1] = 0.0  # the user's bias column stays 1
    g_xu = xu.mul_(g)
    grad_i = yi.mul_(-reg).add_(g_xu)
    grad_j = yj.mul_(-reg).sub_(g_xu)
    users.index_add_(0, u, grad_u, alpha=lr)
    items.index_add_(0, i, grad_i, alpha=lr)
    items.index_add_(0, j, grad_j, alpha=lr)
    return float(torch.nn.functional.softplus(-z).sum()), int(z.shape[0])
