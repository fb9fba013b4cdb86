"""The extracted training window: events as arrays plus contiguous id maps.

A `WindowDataset` is what the extract stage writes to the artifact store and
every later stage reads; it never goes through XCom. Ids in the database are
arbitrary int64; models see contiguous indices `0..n-1` from `user_ids` and
`item_ids` (sorted, so `np.searchsorted` maps back and forth).

`event_code` indexes the dataset's own `event_types`: the three built-in types
(EVENT_TYPES, codes 0, 1, 2) and then the types the night's settings declared
(`RECSYS_EVENT_TYPES`). A dataset written before declared types existed has no
`event_types` array and reads as the built-in three, whose codes are the same.

`session_id` is the log's session of each event (NO_SESSION where the log has none, or the
dataset was written before sessions were read): `shown_slots` groups a day's impressions
and clicks by it, for the per-impression metrics of the evaluate stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from recsys.artifacts import save_npz_atomic
from recsys.errors import DataValidationError
from recsys.event_types import CONFIDENCE_MODES

EVENT_TYPES = ("impression", "click", "consume")  # built in: the first codes of every dataset
NO_SESSION = np.iinfo(np.int64).min  # a NULL session_id (a real bigint id may be negative, not this one)


@dataclass(frozen=True)
class ShownSlots:
    """The impressions of a time range, one entry per shown slot with a session.

    Attributes:
        session: (n,) the log's session id.
        user_index, item_index: (n,) positions in the dataset's id arrays.
        clicked: (n,) whether the same user clicked the same item in the same session, in the range.
    """

    session: np.ndarray
    user_index: np.ndarray
    item_index: np.ndarray
    clicked: np.ndarray

    def __len__(self) -> int:
        return int(self.session.shape[0])

    def select(self, keep: np.ndarray) -> "ShownSlots":
        return ShownSlots(self.session[keep], self.user_index[keep], self.item_index[keep], self.clicked[keep])

    def impression_codes(self) -> np.ndarray:
        """(n,) one integer per (user, session): an impression of MIND's metrics (a session is one user's)."""
        if not len(self):
            return np.zeros(0, np.int64)
        _, codes = np.unique(np.stack([self.user_index.astype(np.int64), self.session]), axis=1,
                             return_inverse=True)
        return codes.reshape(-1).astype(np.int64)


@dataclass(frozen=True)
class WindowDataset:
    """Events of a training window.

    Attributes:
        user_ids: (n_users,) sorted database ids of every user with an event.
        item_ids: (n_items,) sorted database ids of every item with an event.
        user_index, item_index: (n_events,) positions in the id arrays.
        event_code: (n_events,) index into `event_types`.
        ts: (n_events,) event time, Unix seconds.
        value: (n_events,) the value column, NaN where NULL.
        event_types: the names of the codes, EVENT_TYPES first.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    user_index: np.ndarray
    item_index: np.ndarray
    event_code: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    event_types: tuple[str, ...] = EVENT_TYPES
    session_id: np.ndarray | None = None  # (n_events,) int64; None: NO_SESSION for every event

    @property
    def n_events(self) -> int:
        return int(self.user_index.shape[0])

    def save(self, path: Path) -> Path:
        # a crashed extract never leaves a half-written dataset behind
        arrays = {f: getattr(self, f) for f in self.__dataclass_fields__ if getattr(self, f) is not None}
        arrays["event_types"] = np.array(self.event_types, dtype=np.str_)  # a text array: loads without pickle
        return save_npz_atomic(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> "WindowDataset":
        with np.load(path) as data:
            fields = {f: data[f] for f in cls.__dataclass_fields__ if f != "event_types" and f in data.files}
            # datasets of before declared event types have none: their codes are the built-in ones
            names = tuple(str(n) for n in data["event_types"]) if "event_types" in data.files else EVENT_TYPES
        return cls(**fields, event_types=names)

    @property
    def sessions(self) -> np.ndarray:
        """(n_events,) int64 session ids, NO_SESSION where there is none."""
        if self.session_id is None:
            return np.full(self.n_events, NO_SESSION, dtype=np.int64)
        return self.session_id

    def shown_slots(self, impression_types: tuple[str, ...], click_types: tuple[str, ...], from_ts: float,
                    before_ts: float) -> ShownSlots:
        """The impressions with a session in [from_ts, before_ts), each marked clicked when an event of
        `click_types` of the same user, item and session falls in the same range (as
        sql/queries/bench/holdout_impressions.sql reads them from the log)."""
        sessions = self.sessions
        in_range = (self.ts >= from_ts) & (self.ts < before_ts) & (sessions != NO_SESSION)
        shown = np.flatnonzero(in_range & np.isin(self.event_code, self.type_codes(impression_types)))
        clicks = np.flatnonzero(in_range & np.isin(self.event_code, self.type_codes(click_types)))
        keys = np.stack([sessions, self.user_index.astype(np.int64), self.item_index.astype(np.int64)])
        if len(shown) and len(clicks):
            _, inverse = np.unique(np.concatenate([keys[:, shown], keys[:, clicks]], axis=1), axis=1,
                                   return_inverse=True)
            inverse = inverse.reshape(-1)
            clicked = np.isin(inverse[:len(shown)], inverse[len(shown):])
        else:
            clicked = np.zeros(len(shown), dtype=bool)
        return ShownSlots(sessions[shown], self.user_index[shown], self.item_index[shown], clicked)

    def type_codes(self, names: tuple[str, ...]) -> list[int]:
        """The codes of `names`; a name the dataset does not know has no event in it, and no code."""
        return [self.event_types.index(t) for t in names if t in self.event_types]

    def positive_mask(self, positive_types: tuple[str, ...], before_ts: float | None = None,
                      from_ts: float | None = None) -> np.ndarray:
        """Boolean mask of positive events, optionally restricted to [from_ts, before_ts)."""
        mask = np.isin(self.event_code, self.type_codes(positive_types))
        if before_ts is not None:
            mask &= self.ts < before_ts
        if from_ts is not None:
            mask &= self.ts >= from_ts
        return mask

    def strengths(self, mode: str, weights: Mapping[str, float], table: str,
                  mask: np.ndarray | None = None) -> np.ndarray | None:
        """(n_events,) what each event adds to its (user, item) pair's MF input; None for `count` (1 each).

        Args:
            mode: `count`, `weight` (the event type's weight in `weights`, 1 for a type
                it lacks) or `value` (the event's value; a NULL value, NaN here, gives the
                type's weight). recsys.event_types.CONFIDENCE_MODES.
            weights: event type name -> weight.
            table: the source, for messages.
            mask: (n_events,) the events whose values must be usable (the positive ones);
                None: every event.

        Raises:
            DataValidationError: `value` mode and a masked event with a negative value.
        """
        if mode not in CONFIDENCE_MODES:
            raise ValueError(f"confidence mode must be one of {CONFIDENCE_MODES}, got {mode!r}")
        if mode == "count":
            return None
        by_code = np.array([float(weights.get(name, 1.0)) for name in self.event_types], dtype=np.float64)
        out = by_code[self.event_code]
        if mode == "value":
            checked = self.value if mask is None else self.value[mask]
            negative = checked < 0  # NaN is NULL here (the extract refuses a NaN in the log)
            if negative.any():
                raise DataValidationError(table, "value", (
                    f"{int(negative.sum())} positive events hold a negative value (e.g. {float(checked[negative][0])!r}) "
                    "and RECSYS_MF_CONFIDENCE=value sums the values as MF confidence: clip or filter them in the view, "
                    "or use RECSYS_MF_CONFIDENCE=weight"))
            out = np.where(np.isnan(self.value), out, self.value)
        return out

    def user_item_matrix(self, mask: np.ndarray, strengths: np.ndarray | None = None) -> sp.csr_matrix:
        """(n_users, n_items) CSR over the masked events: their counts, or the sums of their `strengths`
        ((n_events,), see `strengths`)."""
        data = (np.ones(int(mask.sum()), dtype=np.float32) if strengths is None
                else strengths[mask].astype(np.float32))
        matrix = sp.csr_matrix(
            (data, (self.user_index[mask], self.item_index[mask])),
            shape=(len(self.user_ids), len(self.item_ids)),
        )
        matrix.sum_duplicates()
        return matrix
