"""Implicit-feedback ALS in PyTorch (Hu, Koren and Volinsky, ICDM 2008).

Objective, for binary preferences p_ui = [r_ui > 0] and confidences
c_ui = 1 + alpha * r_ui:

    min_{X,Y}  sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (|X|^2 + |Y|^2)

Each half-step solves, for every user u at once,
(Y^T Y + Y^T (C_u - I) Y + lambda I) x_u = Y^T C_u p_u with `cg_steps` steps
of conjugate gradient warm-started from the current factors (Takacs et al.,
RecSys 2011), as `implicit` does. Y^T Y is shared by all users; the observed
part costs two sparse passes per step (`recsys.models.mf._sparse`), so a step is
O(nnz * factors) with no Python loop per user. The starting residual
b - A x = sum_i (c_ui - (c_ui - 1) x.y_i) y_i - (Y^T Y + lambda I) x takes
two passes instead of three.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
import torch

from recsys.config import ALSConfig
from recsys.errors import ModelFitError
from recsys.models.mf._sparse import BlockedCSR
from recsys.models.mf.common import (check_finite, check_interactions, effective_factors, set_threads,
                                  start_factors)

logger = logging.getLogger(__name__)


def fit_als(user_items: sp.spmatrix, config: ALSConfig,
            initial: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fit ALS factors.

    Args:
        user_items: (n_users, n_items) sparse interaction strengths r_ui >= 0.
        config: hyper-parameters; `seed` makes the result deterministic on CPU
            (for a given thread count).
        initial: optional warm start (user_factors (n_users, f), item_factors
            (n_items, f)) with f the effective factor count; see
            `recsys.models.mf.warm.align_factors`.

    Returns:
        (user_factors (n_users, f), item_factors (n_items, f)), float32, where
        f = min(config.factors, n_users, n_items).

    Raises:
        ModelFitError: invalid config, empty matrix, negative or non-finite
            strengths, or NaN factors.
    """
    if config.regularization <= 0 or config.alpha < 0 or config.iterations < 0 or config.cg_steps < 1:
        raise ModelFitError(f"ALS needs regularization > 0, alpha >= 0, iterations >= 0, cg_steps >= 1: {config}")
    matrix = check_interactions(user_items, "ALS")
    n_users, n_items = matrix.shape
    factors = effective_factors(config.factors, matrix.shape, "ALS")
    threads = set_threads(config.num_threads, matrix.nnz)
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    users = start_factors(None if initial is None else initial[0], n_users, factors, generator, "user factors")
    items = start_factors(None if initial is None else initial[1], n_items, factors, generator, "item factors")
    # stored values become c_ui - 1 = alpha * r_ui
    by_user = BlockedCSR.by_rows(matrix, factors, scale=config.alpha)
    by_item = BlockedCSR.by_columns(matrix, factors, scale=config.alpha)
    for iteration in range(config.iterations):
        _cg_half_step(users, items, by_user, config)
        _cg_half_step(items, users, by_item, config)
        if not (torch.isfinite(users).all() and torch.isfinite(items).all()):
            raise ModelFitError(f"ALS diverged to NaN/inf at iteration {iteration}")
    check_finite("ALS", users, items)
    logger.info("ALS fit %dx%d, nnz=%d, %d factors, %d iterations, %d threads in %.2fs", n_users, n_items,
                by_user.nnz, factors, config.iterations, threads, time.perf_counter() - started)
    return users.numpy(), items.numpy()


def _cg_half_step(solve: torch.Tensor, fixed: torch.Tensor, side: BlockedCSR, config: ALSConfig) -> None:
    """Update `solve` (n_rows, f) in place with `config.cg_steps` conjugate-gradient steps."""
    gram = fixed.T @ fixed
    gram.diagonal().add_(config.regularization)
    # b - A x = sum_i (c_ui - (c_ui - 1) x.y_i) y_i - gram x, with the stored values w = c - 1
    residual = side.apply(solve, fixed, lambda w, d: torch.addcmul(w + 1.0, w, d, value=-1.0))
    residual.addmm_(solve, gram, alpha=-1.0)
    direction = residual.clone()
    rs_old = torch.linalg.vecdot(residual, residual)
    for step in range(config.cg_steps):
        a_dir = side.apply(direction, fixed, lambda w, d: d.mul_(w))
        a_dir.addmm_(direction, gram)
        denom = torch.linalg.vecdot(direction, a_dir)
        alpha = rs_old / denom.clamp_min_(1e-30)  # denom ~ 0 only where direction ~ 0, and then rs_old ~ 0
        solve.addcmul_(alpha[:, None], direction)
        if step == config.cg_steps - 1:
            break
        residual.addcmul_(alpha[:, None], a_dir, value=-1.0)
        rs_new = torch.linalg.vecdot(residual, residual)
        beta = rs_new / rs_old.clamp_min_(1e-30)
        direction.mul_(beta[:, None]).add_(residual)
        rs_old = rs_new
