"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): an
item-item linear model with a closed form.

For the (n_users, n_items) binary history X (`binary_history`):

    min_B  |X - X B|_F^2 + lambda |B|_F^2   subject to diag(B) = 0

whose solution, with P = (X^T X + lambda I)^-1, is B_ij = -P_ij / P_jj (i != j), B_jj = 0,
i.e. B = I - P diagMat(1 / diag(P)) with its diagonal zeroed. A user's score of item j is
(x_u B)_j.

B is dense: the Gram matrix X^T X is built in float64, in blocks of items, then inverted in
place by Cholesky (X^T X + lambda I is positive definite for lambda > 0), and B is its
float32 copy: about 1.5 matrices of n_items^2 x 8 bytes at the peak, counted as
`WORKING_COPIES` = 2 with LAPACK's and the blocks' temporaries. `fit_ease` refuses, before
allocating anything, a catalogue whose matrices would exceed the memory it is given.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from recsys.errors import ConfigurationError, ModelFitError
from recsys.models.item_item.model import binary_history

logger = logging.getLogger(__name__)

WORKING_COPIES = 2
BLOCK_SCORES = 4 << 20  # Gram entries built per sparse product (4M)
MEMORY_SETTING = "RECSYS_EASE_MAX_MEMORY_MB"


def required_bytes(n_items: int) -> int:
    """Bytes EASE needs for `n_items`: n_items^2 x 8 (float64) x WORKING_COPIES."""
    return n_items * n_items * 8 * WORKING_COPIES


def check_memory(n_items: int, max_memory_mb: float) -> None:
    """Raise ConfigurationError when `n_items` needs more than `max_memory_mb` MiB, naming the
    item count, the bytes needed, the setting and the largest catalogue that fits."""
    needed, allowed = required_bytes(n_items), max_memory_mb * 2**20
    if needed > allowed:
        largest = int(np.sqrt(allowed / (8 * WORKING_COPIES)))
        raise ConfigurationError(
            f"EASE refuses {n_items:,} items: its Gram matrix and solver need {n_items:,}^2 x 8 bytes x "
            f"{WORKING_COPIES} = {needed:,} bytes ({needed / 2**20:,.0f} MiB), above {MEMORY_SETTING}="
            f"{max_memory_mb:g} MiB (room for {largest:,} items); raise {MEMORY_SETTING} on a worker with that "
            f"much free memory, shorten the window, or use itemknn, whose memory grows with items x neighbours")


def fit_ease(user_items: sp.spmatrix, l2: float, max_memory_mb: float) -> np.ndarray:
    """The (n_items, n_items) float32 EASE weights B of the module doc.

    Raises:
        ConfigurationError: the catalogue does not fit `max_memory_mb` (`check_memory`).
        ModelFitError: lambda <= 0, a failed factorisation or non-finite weights.
    """
    if not l2 > 0:
        raise ModelFitError(f"EASE needs lambda > 0, got {l2!r}")
    n_items = user_items.shape[1]
    check_memory(n_items, max_memory_mb)
    started = time.perf_counter()
    gram = gram_matrix(binary_history(user_items))
    gram[np.diag_indices(n_items)] += l2
    # gram is symmetric, so its C-ordered buffer is the Fortran-ordered gram: LAPACK works in place
    factor, info = lapack.dpotrf(gram.T, lower=False, clean=False, overwrite_a=True)
    if info == 0:
        factor, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelFitError(f"EASE: the Cholesky inverse of X^T X + {l2:g} I failed (LAPACK info {info})")
    precision = factor.T  # C-ordered again; LAPACK filled one triangle only
    _symmetrise_from_upper(precision.T)
    diagonal = np.diag(precision).copy()
    precision /= -diagonal[None, :]
    precision[np.diag_indices(n_items)] = 0.0
    weights = precision.astype(np.float32)
    del gram, factor, precision
    if not np.isfinite(weights).all():
        raise ModelFitError(f"EASE weights hold {int((~np.isfinite(weights)).sum())} NaN/inf values")
    logger.info("EASE (lambda %g) of %d items in %.2fs", l2, n_items, time.perf_counter() - started)
    return weights


def gram_matrix(history: sp.csr_matrix) -> np.ndarray:
    """(n_items, n_items) float64 X^T X, built a block of rows at a time."""
    n_items = history.shape[1]
    by_item = history.T.tocsr().astype(np.float64)
    columns = history.tocsc().astype(np.float64)
    gram = np.empty((n_items, n_items), dtype=np.float64)
    # a block's sparse product may be dense: a sixteenth of the matrix at most keeps it small beside it
    block = max(1, min(BLOCK_SCORES // max(n_items, 1), n_items // 16))
    for lo in range(0, n_items, block):
        hi = min(lo + block, n_items)
        (by_item[lo:hi] @ columns).toarray(out=gram[lo:hi])
    return gram


def _symmetrise_from_upper(matrix: np.ndarray) -> None:
    """Copy the upper triangle of a square Fortran-ordered `matrix` onto its lower one, in place,
    a block at a time (no n x n temporary)."""
    n = matrix.shape[0]
    block = max(1, min(BLOCK_SCORES // max(n, 1), n // 16))
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        tile = matrix[lo:hi, lo:hi]
        tile[...] = np.triu(tile) + np.triu(tile, 1).T
        matrix[hi:, lo:hi] = matrix[lo:hi, hi:].T
