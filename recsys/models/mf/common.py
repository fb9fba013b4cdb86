"""What every MF model shares: input checks, thread count, factor initialisation.

Documented handling of awkward input (the same for ALS and BPR):

* empty matrix, NaN/inf or negative strengths: `ModelFitError` naming the count;
* users or items without interactions (rows/columns of zeros): allowed; ALS
  drives their factors to zero, BPR never updates them from their small
  random start, and the publish stage serves such users popularity;
* a single user or a single item: allowed (a single item gives every user the
  same one-item ranking);
* more factors than min(n_users, n_items): the factor count is capped at that
  rank, with a warning, and the capped value is what the model records;
* factors that come out NaN/inf: `ModelFitError`; such a model is never saved.
"""

from __future__ import annotations

import ctypes
import logging
import os

import numpy as np
import scipy.sparse as sp
import torch

from recsys.errors import ModelFitError

logger = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on (the task's affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def set_threads(num_threads: int, nnz: int | None = None) -> int:
    """Prepare the process for a fit; returns the thread count.

    Sets torch's intra-op threads to `num_threads`, or, when 0, to the CPUs
    given to the task but at most one per `NNZ_PER_THREAD` interactions: on a
    small matrix each of the solver's many small operations costs less than
    waking a second thread (and on a busy machine far less). On glibc it also fixes malloc's mmap threshold at 4 MiB: the
    solvers allocate and free many (n_rows, f) temporaries of tens of MiB, and
    glibc's default (a threshold that rises after the first free, up to 32 MiB)
    then serves them from the heap and keeps the freed space, which raised the
    peak resident memory of a 10M-interaction fit by a third. Fixing that threshold also
    fixes the trim threshold, at glibc's 128 KiB unless set too: every free at the top of
    a heap then gave the pages back, and the next allocation faulted them in again. BPR's
    steps allocate and free ~1 MiB blocks, and with its second thread (a second malloc
    arena) a MovieLens fit ran 3x slower in most runs; a 32 MiB trim threshold ended it.
    """
    global _MALLOC_TUNED
    n = num_threads if num_threads > 0 else available_cpus()
    if num_threads <= 0 and nnz is not None:
        n = max(1, min(n, nnz // NNZ_PER_THREAD))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if not _MALLOC_TUNED:
        _MALLOC_TUNED = True
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(_M_MMAP_THRESHOLD, 4 << 20)
            libc.mallopt(_M_TRIM_THRESHOLD, 32 << 20)
        except (OSError, AttributeError):  # not glibc: nothing to tune
            pass
    return n


NNZ_PER_THREAD = 500_000
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MALLOC_TUNED = False


def check_interactions(user_items: sp.spmatrix, model: str) -> sp.csr_matrix:
    """Validate a (n_users, n_items) matrix of interaction strengths.

    Returns a canonical CSR (sorted, no duplicates, no stored zeros), which
    shares memory with the input when that already is one: callers must not
    modify it.

    Raises:
        ModelFitError: no interactions, or NaN/inf/negative strengths.
    """
    matrix = user_items if sp.isspmatrix_csr(user_items) else sp.csr_matrix(user_items)
    if not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
    if matrix.shape[0] == 0 or matrix.shape[1] == 0 or matrix.nnz == 0:
        raise ModelFitError(f"{model} needs at least one interaction (got a {matrix.shape} matrix with none)")
    bad = ~np.isfinite(matrix.data)
    if bad.any():
        raise ModelFitError(f"{model}: {int(bad.sum())} interaction strengths are NaN or infinite")
    if (matrix.data < 0).any():
        raise ModelFitError(f"{model}: {int((matrix.data < 0).sum())} interaction strengths are negative")
    if (matrix.data == 0).any():  # a stored zero is no interaction
        matrix = matrix.copy()
        matrix.eliminate_zeros()
    if matrix.nnz == 0:
        raise ModelFitError(f"{model} needs at least one positive interaction strength")
    return matrix


def effective_factors(requested: int, shape: tuple[int, int], model: str) -> int:
    """`requested`, capped at min(n_users, n_items) with a warning."""
    if requested < 1:
        raise ModelFitError(f"{model}: factors must be >= 1, got {requested}")
    cap = min(shape)
    if requested > cap:
        logger.warning("%s: %d factors requested but the matrix is %dx%d: using %d", model, requested,
                       shape[0], shape[1], cap)
        return cap
    return requested


def init_factors(n_rows: int, n_factors: int, generator: torch.Generator, scale: float = 0.01,
                 centred: bool = False) -> torch.Tensor:
    """(n_rows, n_factors) small random factors, uniform on [0, scale) (ALS, like `implicit`),
    or on [-scale/2, scale/2) when `centred` (BPR, like `implicit`)."""
    fresh = torch.rand(n_rows, n_factors, generator=generator)
    if centred:
        fresh.sub_(0.5)
    return fresh.mul_(scale)


def start_factors(initial: np.ndarray | None, n_rows: int, n_factors: int, generator: torch.Generator,
                  name: str, scale: float = 0.01, centred: bool = False) -> torch.Tensor:
    """Fresh factors, or `initial` (warm start) with its all-NaN rows (rows it does not know) fresh.

    Raises:
        ModelFitError: `initial` has the wrong shape, or a row that is only partly NaN or holds inf.
    """
    fresh = init_factors(n_rows, n_factors, generator, scale, centred)  # drawn either way: same stream
    if initial is None:
        return fresh
    if initial.shape != (n_rows, n_factors):
        raise ModelFitError(f"warm start {name} have shape {initial.shape}, expected {(n_rows, n_factors)}")
    unknown = np.isnan(initial).all(axis=1)
    if not np.isfinite(initial[~unknown]).all():
        raise ModelFitError(f"warm start {name} contain NaN/inf in rows that are not entirely NaN")
    start = torch.from_numpy(np.array(initial, dtype=np.float32))
    mask = torch.from_numpy(unknown)
    start[mask] = fresh[mask]
    return start


def check_finite(name: str, *arrays: torch.Tensor) -> None:
    for array in arrays:
        if not torch.isfinite(array).all():
            raise ModelFitError(f"{name} produced {int((~torch.isfinite(array)).sum())} NaN/inf factor values")
