"""PostgreSQL binary COPY payloads built with numpy, without a Python loop per row.

A published list has constant text columns (model, version) and fixed-width
numeric ones, so every tuple has the same byte layout: one structured numpy
record per row, big-endian, is the whole COPY stream.
See https://www.postgresql.org/docs/current/sql-copy.html (Binary Format).
"""

from __future__ import annotations

import io
from datetime import date

import numpy as np

_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_EPOCH = date(2000, 1, 1)


def recommendation_rows(model: str, version: str, run_date: date, user_ids: np.ndarray, ranks: np.ndarray,
                        item_ids: np.ndarray, scores: np.ndarray) -> io.BytesIO:
    """Binary COPY stream for columns (model, model_version, run_date, user_id, rank, item_id, score)."""
    model_b, version_b = model.encode(), version.encode()
    dtype = np.dtype([
        ("nfields", ">i2"),
        ("model_len", ">i4"), ("model", f"S{len(model_b)}"),
        ("version_len", ">i4"), ("version", f"S{len(version_b)}"),
        ("date_len", ">i4"), ("date", ">i4"),
        ("user_len", ">i4"), ("user", ">i8"),
        ("rank_len", ">i4"), ("rank", ">i2"),
        ("item_len", ">i4"), ("item", ">i8"),
        ("score_len", ">i4"), ("score", ">f4"),
    ])
    rows = np.empty(len(user_ids), dtype=dtype)
    rows["nfields"] = 7
    rows["model_len"], rows["model"] = len(model_b), model_b
    rows["version_len"], rows["version"] = len(version_b), version_b
    rows["date_len"], rows["date"] = 4, (run_date - _PG_EPOCH).days
    rows["user_len"], rows["user"] = 8, user_ids
    rows["rank_len"], rows["rank"] = 2, ranks
    rows["item_len"], rows["item"] = 8, item_ids
    rows["score_len"], rows["score"] = 4, scores
    return io.BytesIO(_HEADER + rows.tobytes() + _TRAILER)
