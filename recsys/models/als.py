"""Implicit-feedback ALS in PyTorch (Hu, Koren and Volinsky, ICDM 2008).

Objective, for binary preferences p_ui = [r_ui > 0] and confidences
c_ui = 1 + alpha * r_ui:

    min_{X,Y}  sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (|X|^2 + |Y|^2)

Each half-step solves, for every user u at once,
(Y^T Y + Y^T (C_u - I) Y + lambda I) x_u = Y^T C_u p_u with a few steps of
conjugate gradient warm-started from the current factors (Takacs et al.,
RecSys 2011), the way `implicit` does. The unobserved part Y^T Y is shared by
all users; the observed part is applied through the sparse matrix, so the cost
per step is O(nnz * factors) with no Python loop per user.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from recsys.config import ALSConfig
from recsys.errors import ModelFitError

logger = logging.getLogger(__name__)


def fit_als(user_items: sp.csr_matrix, config: ALSConfig) -> tuple[np.ndarray, np.ndarray]:
    """Fit ALS factors.

    Args:
        user_items: (n_users, n_items) CSR of interaction strengths r_ui >= 0.
        config: hyper-parameters; `seed` makes the result deterministic on CPU.

    Returns:
        (user_factors (n_users, f), item_factors (n_items, f)), float32.

    Raises:
        ModelFitError: empty matrix, negative or non-finite strengths, or NaN factors.
    """
    if user_items.nnz == 0:
        raise ModelFitError("ALS needs at least one interaction")
    if not np.isfinite(user_items.data).all() or (user_items.data < 0).any():
        raise ModelFitError("interaction strengths must be finite and non-negative")
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    n_users, n_items = user_items.shape
    users = torch.randn(n_users, config.factors, generator=generator) * 0.01
    items = torch.randn(n_items, config.factors, generator=generator) * 0.01
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        by_user = _SideMatrix(user_items.tocsr(), config.alpha)
        by_item = _SideMatrix(user_items.T.tocsr(), config.alpha)
        for iteration in range(config.iterations):
            _cg_half_step(users, items, by_user, config)
            _cg_half_step(items, users, by_item, config)
            if not (torch.isfinite(users).all() and torch.isfinite(items).all()):
                raise ModelFitError(f"ALS diverged to NaN/inf at iteration {iteration}")
    logger.info("ALS fit %dx%d, nnz=%d, %d factors, %d iterations in %.2fs",
                n_users, n_items, user_items.nnz, config.factors, config.iterations, time.perf_counter() - started)
    return users.numpy(), items.numpy()


class _SideMatrix:
    """One orientation of the confidence matrix in the tensors the CG step needs."""

    def __init__(self, matrix: sp.csr_matrix, alpha: float) -> None:
        matrix = matrix.copy()
        matrix.sum_duplicates()
        matrix.sort_indices()
        self.shape = matrix.shape
        self.crow = torch.from_numpy(matrix.indptr.astype(np.int64))
        self.cols = torch.from_numpy(matrix.indices.astype(np.int64))
        self.extra_confidence = torch.from_numpy((alpha * matrix.data).astype(np.float32))  # c_ui - 1
        self.confidence_csr = self._csr(1.0 + self.extra_confidence)
        self.pattern = self._csr(torch.zeros_like(self.extra_confidence))

    def _csr(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.cols, values, size=self.shape, check_invariants=False)

    def observed_product(self, solve: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """Rows of sum_i (c_ui - 1) (y_i . s_u) y_i for every row u of `solve`."""
        # sampled_addmm computes s_u . y_i only at the stored (u, i): no (nnz, f) gather buffer
        dots = torch.sparse.sampled_addmm(self.pattern, solve, fixed.T, beta=0.0).values()
        return self._csr(dots * self.extra_confidence) @ fixed


def _cg_half_step(solve: torch.Tensor, fixed: torch.Tensor, side: _SideMatrix, config: ALSConfig) -> None:
    """Update `solve` in place with `config.cg_steps` conjugate-gradient steps."""
    gram = fixed.T @ fixed + config.regularization * torch.eye(fixed.shape[1])

    def apply_a(v: torch.Tensor) -> torch.Tensor:
        return v @ gram + side.observed_product(v, fixed)

    rhs = torch.sparse.mm(side.confidence_csr, fixed)  # Y^T C_u p_u
    residual = rhs - apply_a(solve)
    direction = residual.clone()
    rs_old = (residual * residual).sum(dim=1)
    for _ in range(config.cg_steps):
        a_dir = apply_a(direction)
        denom = (direction * a_dir).sum(dim=1)
        step = torch.where(denom > 0, rs_old / denom.clamp_min(1e-20), torch.zeros_like(denom))
        solve += step[:, None] * direction
        residual -= step[:, None] * a_dir
        rs_new = (residual * residual).sum(dim=1)
        ratio = torch.where(rs_old > 1e-20, rs_new / rs_old.clamp_min(1e-20), torch.zeros_like(rs_old))
        direction = residual + ratio[:, None] * direction
        rs_old = rs_new
