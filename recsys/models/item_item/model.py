"""The saved item-item model: an (n_items, n_items) matrix S, sparse or dense, with the id
maps and lineage, checksummed like `recsys.models.factors.FactorModel`.

`model.npz` holds `similarity` (dense) or `similarity_data/_indices/_indptr/_shape`
(CSR), plus `user_ids` (the window it was trained on, which the score stage checks) and
`item_ids`; `model.json` the config, data interval and the npz's sha256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.artifacts import save_npz_atomic
from recsys.errors import ModelFitError
from recsys.models.factors import sha256_file

SPARSE_KEYS = ("similarity_data", "similarity_indices", "similarity_indptr", "similarity_shape")


def binary_history(user_items: sp.spmatrix) -> sp.csr_matrix:
    """(n_users, n_items) float32 CSR with 1 where `user_items` has a positive entry: what the
    item-item models read as a user's history (repeated events count once)."""
    history = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    history.data = (history.data > 0).astype(np.float32)
    history.eliminate_zeros()
    return history


@dataclass
class ItemItemModel:
    """An item-item model.

    Attributes:
        similarity: (n_items, n_items) float32, a CSR matrix (neighbours) or an ndarray (EASE);
            row i holds what item i in a history adds to every item's score.
        user_ids, item_ids: database ids of the window's users and of S's rows and columns (sorted).
        meta: JSON-serialisable lineage (params, interval).
    """

    similarity: sp.csr_matrix | np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def check_finite(self) -> None:
        """Raise ModelFitError when S holds NaN or infinite values (never save or score such a model)."""
        values = self.similarity.data if sp.issparse(self.similarity) else self.similarity
        if not np.isfinite(values).all():
            raise ModelFitError(f"the item-item matrix holds {int((~np.isfinite(values)).sum())} NaN/inf values")

    def save(self, directory: Path) -> tuple[Path, str]:
        """Write model.npz and model.json; returns (npz path, sha256)."""
        self.check_finite()
        directory.mkdir(parents=True, exist_ok=True)
        npz = directory / "model.npz"
        if sp.issparse(self.similarity):
            s = self.similarity.tocsr()
            arrays = dict(zip(SPARSE_KEYS, (s.data, s.indices, s.indptr, np.array(s.shape, np.int64))))
        else:
            arrays = {"similarity": self.similarity}
        save_npz_atomic(npz, **arrays, user_ids=self.user_ids, item_ids=self.item_ids)
        digest = sha256_file(npz)
        (directory / "model.json").write_text(json.dumps({**self.meta, "sha256": digest}, indent=2, default=str))
        return npz, digest

    @classmethod
    def load(cls, npz: Path, expected_sha256: str | None = None) -> "ItemItemModel":
        if expected_sha256 is not None and sha256_file(npz) != expected_sha256:
            raise ModelFitError(f"checksum mismatch for {npz}: the artifact changed after training")
        meta_path = npz.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        with np.load(npz) as data:
            if "similarity" in data.files:
                similarity = data["similarity"]
            else:
                values, indices, indptr, shape = (data[key] for key in SPARSE_KEYS)
                similarity = sp.csr_matrix((values, indices, indptr), shape=tuple(int(n) for n in shape))
            return cls(similarity, data["user_ids"], data["item_ids"], meta)

    def aligned(self, item_ids: np.ndarray) -> tuple[sp.csr_matrix | np.ndarray, np.ndarray]:
        """S re-indexed to `item_ids` (sorted database ids), and a (len(item_ids),) mask of the items it
        knew; rows and columns of the items it did not know are zero."""
        pos = np.minimum(np.searchsorted(self.item_ids, item_ids), max(len(self.item_ids) - 1, 0))
        known = (self.item_ids[pos] == item_ids) if len(self.item_ids) else np.zeros(len(item_ids), bool)
        new_of_old = np.full(len(self.item_ids), -1, dtype=np.int64)
        new_of_old[pos[known]] = np.flatnonzero(known)
        n = len(item_ids)
        if sp.issparse(self.similarity):
            coo = self.similarity.tocoo()
            rows, cols = new_of_old[coo.row], new_of_old[coo.col]
            keep = (rows >= 0) & (cols >= 0)
            return sp.csr_matrix((coo.data[keep], (rows[keep], cols[keep])), shape=(n, n)), known
        out = np.zeros((n, n), dtype=np.float32)
        old = pos[known]
        out[np.ix_(np.flatnonzero(known), np.flatnonzero(known))] = self.similarity[np.ix_(old, old)]
        return out, known
