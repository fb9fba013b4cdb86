"""The extracted training window: events as arrays plus contiguous id maps.

A `WindowDataset` is what the extract stage writes to the artifact store and
every later stage reads; it never goes through XCom. Ids in the database are
arbitrary int64; models see contiguous indices `0..n-1` from `user_ids` and
`item_ids` (sorted, so `np.searchsorted` maps back and forth).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys.artifacts import save_npz_atomic

EVENT_TYPES = ("impression", "click", "consume")


@dataclass(frozen=True)
class WindowDataset:
    """Events of a training window.

    Attributes:
        user_ids: (n_users,) sorted database ids of every user with an event.
        item_ids: (n_items,) sorted database ids of every item with an event.
        user_index, item_index: (n_events,) positions in the id arrays.
        event_code: (n_events,) index into EVENT_TYPES.
        ts: (n_events,) event time, Unix seconds.
        value: (n_events,) the value column, NaN where NULL.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    user_index: np.ndarray
    item_index: np.ndarray
    event_code: np.ndarray
    ts: np.ndarray
    value: np.ndarray

    @property
    def n_events(self) -> int:
        return int(self.user_index.shape[0])

    def save(self, path: Path) -> Path:
        # a crashed extract never leaves a half-written dataset behind
        return save_npz_atomic(path, **{f: getattr(self, f) for f in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path) -> "WindowDataset":
        with np.load(path) as data:
            return cls(**{f: data[f] for f in cls.__dataclass_fields__})

    def positive_mask(self, positive_types: tuple[str, ...], before_ts: float | None = None,
                      from_ts: float | None = None) -> np.ndarray:
        """Boolean mask of positive events, optionally restricted to [from_ts, before_ts)."""
        codes = [EVENT_TYPES.index(t) for t in positive_types]
        mask = np.isin(self.event_code, codes)
        if before_ts is not None:
            mask &= self.ts < before_ts
        if from_ts is not None:
            mask &= self.ts >= from_ts
        return mask

    def user_item_matrix(self, mask: np.ndarray) -> sp.csr_matrix:
        """(n_users, n_items) CSR of event counts over the masked events."""
        data = np.ones(int(mask.sum()), dtype=np.float32)
        matrix = sp.csr_matrix(
            (data, (self.user_index[mask], self.item_index[mask])),
            shape=(len(self.user_ids), len(self.item_ids)),
        )
        matrix.sum_duplicates()
        return matrix
