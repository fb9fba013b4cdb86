"""Sparse kernels the MF solvers share: one orientation of the interaction matrix.

Conjugate-gradient ALS spends almost all its time in one operation, applied
once per step to every stored (row, col) pair:

    out_r = sum_c  g(v_rc, s_r . f_c) f_c

with `solve` rows s_r, `fixed` rows f_c and a cheap elementwise g. It is
done as `sampled_addmm` (the dots at the stored pairs) followed by
`embedding_bag` with per-sample weights (fbgemm's kernel, several times faster
on CPU than a CSR x dense product).

Both gather rows of `fixed` at random, so they are fast only while the
gathered rows stay in cache: the columns are split into blocks of about
`block_bytes` of factors each (cache blocking), and also so that no block
holds more than `block_nnz` entries, which bounds the temporaries of a call.
Each block keeps its own CSR with int32 indices (half the traffic of int64).
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Iterable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

BLOCK_BYTES = 4 << 20
BLOCK_NNZ = 2_000_000

WeightFn = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


class BlockedCSR:
    """(n_rows, n_cols) sparse matrix split into column blocks.

    Attributes:
        shape: (n_rows, n_cols).
        nnz: stored entries.
    """

    def __init__(self, shape: tuple[int, int], blocks: Iterable[tuple[int, int, sp.csr_matrix]], scale: float = 1.0) -> None:
        self.shape = shape
        self._blocks: list[tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for lo, hi, block in blocks:
            if block.nnz == 0:
                continue
            index_dtype = np.int32 if block.nnz < 2**31 else np.int64
            crow = torch.from_numpy(block.indptr.astype(index_dtype, copy=False))
            cols = torch.from_numpy(block.indices.astype(index_dtype, copy=False))
            values = torch.from_numpy(block.data.astype(np.float32))
            if scale != 1.0:
                values.mul_(scale)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                # sampled_addmm(beta=0) multiplies the pattern's values by 0: they must be finite,
                # and the stored values are (checked on input), so they double as the pattern's
                pattern = torch.sparse_csr_tensor(crow, cols, values, size=(shape[0], hi - lo), check_invariants=False)
            self._blocks.append((lo, hi, pattern, cols, crow[:-1], values))
        self.nnz = sum(int(b[5].shape[0]) for b in self._blocks)

    @classmethod
    def by_rows(cls, matrix: sp.csr_matrix, n_factors: int, scale: float = 1.0) -> "BlockedCSR":
        """The matrix as given (rows = the side being solved), split into column blocks."""
        n_rows, n_cols = matrix.shape
        edges = _edges(np.bincount(matrix.indices, minlength=n_cols), n_factors)
        if len(edges) == 2:
            return cls(matrix.shape, [(0, n_cols, matrix)], scale)
        blocks = ((int(lo), int(hi), matrix[:, lo:hi].tocsr()) for lo, hi in zip(edges[:-1], edges[1:]))
        return cls(matrix.shape, blocks, scale)  # a generator: one block's slice in memory at a time

    @classmethod
    def by_columns(cls, matrix: sp.csr_matrix, n_factors: int, scale: float = 1.0) -> "BlockedCSR":
        """The transpose of `matrix`, built one block (a row range of `matrix`) at a time.

        Never materialises the whole transpose: only one block's copy exists at a time.
        """
        n_rows, n_cols = matrix.shape
        edges = _edges(np.diff(matrix.indptr), n_factors)
        blocks = ((int(lo), int(hi), matrix[lo:hi].T.tocsr()) for lo, hi in zip(edges[:-1], edges[1:]))
        return cls((n_cols, n_rows), blocks, scale)

    def apply(self, solve: torch.Tensor | None, fixed: torch.Tensor, weight: WeightFn) -> torch.Tensor:
        """(n_rows, f): out_r = sum_c weight(v_rc, s_r . f_c) f_c, one block at a time.

        Args:
            solve: (n_rows, f), or None when `weight` ignores the dots (it gets None).
            fixed: (n_cols, f).
            weight: maps a block's stored values and dots (both (nnz_b,)) to weights.
        """
        out = None
        for lo, hi, pattern, cols, offsets, values in self._blocks:
            block_fixed = fixed[lo:hi]
            dots = None
            if solve is not None:
                dots = torch.sparse.sampled_addmm(pattern, solve, block_fixed.T, beta=0.0).values()
            part = F.embedding_bag(cols, block_fixed, offsets, mode="sum", per_sample_weights=weight(values, dots))
            out = part if out is None else out.add_(part)
        if out is None:
            return torch.zeros(self.shape[0], fixed.shape[1], dtype=fixed.dtype)
        return out


def _edges(col_counts: np.ndarray, n_factors: int) -> np.ndarray:
    """Column block boundaries: a block's factors fit `BLOCK_BYTES`, its entries `BLOCK_NNZ`.

    Equal column ranges bound the factor bytes; equal-nnz ranges (by the
    cumulative column counts) bound the entries of power-law columns; the
    boundaries are the union of both.
    """
    n_cols, nnz = len(col_counts), int(col_counts.sum())
    by_bytes = max(1, math.ceil(n_cols * n_factors * 4 / BLOCK_BYTES))
    by_nnz = max(1, math.ceil(nnz / BLOCK_NNZ))
    edges = [np.linspace(0, n_cols, min(by_bytes, n_cols) + 1).astype(np.int64)]
    if by_nnz > 1:
        cum = np.cumsum(col_counts)
        edges.append(np.searchsorted(cum, np.linspace(0, nnz, by_nnz + 1)[1:-1], side="right"))
    return np.unique(np.concatenate(edges + [np.array([0, n_cols])]))
