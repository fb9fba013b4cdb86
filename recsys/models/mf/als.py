"""Implicit-feedback ALS in PyTorch (Hu, Koren and Volinsky, ICDM 2008), with the
unobserved weight and the frequency-scaled regularisation of iALS as Rendle, Krichene,
Zhang and Koren revisit it (2022).

Objective, for binary preferences p_ui = [r_ui > 0], confidences c_ui = 1 + alpha * r_ui
on the observed pairs and alpha_0 (`unobserved_weight`) on every other pair:

    min_{X,Y}  sum_{observed} c_ui (1 - x_u . y_i)^2 + alpha_0 sum_{unobserved} (x_u . y_i)^2
               + sum_u lambda_u |x_u|^2 + sum_i lambda_i |y_i|^2

with lambda_u = lambda * (n_u + alpha_0 * n_items) ** nu and lambda_i = lambda * (n_i +
alpha_0 * n_users) ** nu (`reg_exponent` nu; n_u, n_i the observed pairs of the row; the
base is at least 1, so a row with no pair under alpha_0 = 0 still gets lambda). nu = 0
and alpha_0 = 1 are Hu et al.'s model.

Each half-step solves, for every user u at once, the normal equations

    (alpha_0 Y^T Y + sum_{i observed} (c_ui - alpha_0) y_i y_i^T + lambda_u I) x_u = sum_{i observed} c_ui y_i

with `cg_steps` steps of conjugate gradient warm-started from the current factors (Takacs
et al., RecSys 2011), as `implicit` does. alpha_0 Y^T Y is shared by all users; the observed
part costs two sparse passes per step (`recsys.models.mf._sparse`), so a step is
O(nnz * factors) with no Python loop per user. The stored values are the c_ui (>= 1, so
never a stored zero); the starting residual b - A x = sum_i (c_ui - (c_ui - alpha_0)
x.y_i) y_i - (alpha_0 Y^T Y + lambda_u) x takes two passes instead of three.
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
    if config.regularization <= 0 or config.alpha < 0 or config.iterations < 0 or config.cg_steps < 1 \
            or not 0.0 <= config.unobserved_weight < float("inf") or not 0.0 <= config.reg_exponent < float("inf"):
        raise ModelFitError("ALS needs regularization > 0, alpha >= 0, iterations >= 0, cg_steps >= 1, "
                            f"0 <= unobserved_weight < inf, 0 <= reg_exponent < inf: {config}")
    matrix = check_interactions(user_items, "ALS")
    n_users, n_items = matrix.shape
    factors = effective_factors(config.factors, matrix.shape, "ALS")
    threads = set_threads(config.num_threads, matrix.nnz)
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    users = start_factors(None if initial is None else initial[0], n_users, factors, generator, "user factors")
    items = start_factors(None if initial is None else initial[1], n_items, factors, generator, "item factors")
    confidence = confidence_matrix(matrix, config.alpha)
    by_user = BlockedCSR.by_rows(confidence, factors)
    by_item = BlockedCSR.by_columns(confidence, factors)
    user_reg = row_regularization(np.diff(matrix.indptr), n_items, config)
    item_reg = row_regularization(np.bincount(matrix.indices, minlength=n_items), n_users, config)
    for iteration in range(config.iterations):
        _cg_half_step(users, items, by_user, user_reg, config)
        _cg_half_step(items, users, by_item, item_reg, config)
        if not (torch.isfinite(users).all() and torch.isfinite(items).all()):
            raise ModelFitError(f"ALS diverged to NaN/inf at iteration {iteration}")
    check_finite("ALS", users, items)
    logger.info("ALS fit %dx%d, nnz=%d, %d factors, %d iterations, %d threads in %.2fs", n_users, n_items,
                by_user.nnz, factors, config.iterations, threads, time.perf_counter() - started)
    return users.numpy(), items.numpy()


def confidence_matrix(matrix: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """`matrix` with c_ui = 1 + alpha * r_ui as its values, float32 (the index arrays are shared, not copied)."""
    return sp.csr_matrix((1.0 + alpha * matrix.data.astype(np.float32), matrix.indices, matrix.indptr),
                         shape=matrix.shape)


def row_regularization(observed: np.ndarray, n_other: int, config: ALSConfig) -> torch.Tensor:
    """(n_rows, 1) each row's L2 weight: regularization * max(1, n_r + alpha_0 * n_other) ** reg_exponent.

    Args:
        observed: (n_rows,) observed pairs of each row (its user's items, or its item's users).
        n_other: the size of the other side (items for users, users for items).
    """
    base = np.maximum(observed.astype(np.float64) + config.unobserved_weight * n_other, 1.0)
    weights = config.regularization * base ** config.reg_exponent
    return torch.from_numpy(weights.astype(np.float32))[:, None]


def _cg_half_step(solve: torch.Tensor, fixed: torch.Tensor, side: BlockedCSR, reg: torch.Tensor,
                  config: ALSConfig) -> None:
    """Update `solve` (n_rows, f) in place with `config.cg_steps` conjugate-gradient steps.

    `side` stores c_ui at the observed pairs, `reg` (n_rows, 1) each row's L2 weight:
    A x = alpha_0 Y^T Y x + sum_obs (c - alpha_0)(x.y) y + reg x, b = sum_obs c y.
    """
    a0 = config.unobserved_weight
    gram = fixed.T @ fixed
    gram.mul_(a0)
    # b - A x = sum_i (c - (c - alpha_0) x.y_i) y_i - alpha_0 G x - reg x
    residual = side.apply(solve, fixed, lambda c, d: torch.addcmul(c, c - a0, d, value=-1.0))
    residual.addmm_(solve, gram, alpha=-1.0)
    residual.addcmul_(reg, solve, value=-1.0)
    direction = residual.clone()
    rs_old = torch.linalg.vecdot(residual, residual)
    for step in range(config.cg_steps):
        a_dir = side.apply(direction, fixed, lambda c, d: d.mul_(c - a0))
        a_dir.addmm_(direction, gram)
        a_dir.addcmul_(reg, direction)
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
