"""PostgreSQL binary COPY payloads built with numpy, without a Python loop per row.

A published list has constant text columns (model, version) and fixed-width
numeric ones, so every tuple of the same list length has the same byte layout:
one structured numpy record per tuple, big-endian, is the COPY stream.
See https://www.postgresql.org/docs/current/sql-copy.html (Binary Format) and
array_send in PostgreSQL's arrayfuncs.c for the array layout.
"""

from __future__ import annotations

import io
from datetime import date

import numpy as np

# binary COPY framing (https://www.postgresql.org/docs/current/sql-copy.html, Binary Format)
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
PG_EPOCH = date(2000, 1, 1)
_INT8_OID, _FLOAT4_OID = 20, 700


def _array_field(element: str, n: int) -> list:
    """dtype of a one-dimensional binary array field of n non-null elements, length prefix included."""
    return [("field_len", ">i4"), ("ndim", ">i4"), ("has_nulls", ">i4"), ("element_oid", ">i4"),
            ("dim", ">i4"), ("lower_bound", ">i4"), ("values", [("len", ">i4"), ("v", element)], (n,))]


def recommendation_list_rows(model: str, version: str, run_date: date, user_ids: np.ndarray, item_ids: np.ndarray,
                             scores: np.ndarray) -> io.BytesIO:
    """Binary COPY stream for columns (model, model_version, run_date, user_id, item_ids, scores):
    one tuple per user, its items and scores as bigint[] and real[] in rank order.

    Inputs are one entry per recommendation, sorted by user and then rank. Users
    are grouped by list length (one fixed layout per length), so tuples come out
    ordered by length, then user.
    """
    model_b, version_b = model.encode(), version.encode()
    user_ids = np.asarray(user_ids)
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]]) if len(user_ids) else np.empty(0, np.int64)
    lengths = np.diff(np.r_[starts, len(user_ids)])
    chunks = [COPY_HEADER]
    for length in np.unique(lengths).tolist():
        first = starts[lengths == length]
        at = first[:, None] + np.arange(length)
        dtype = np.dtype([
            ("nfields", ">i2"),
            ("model_len", ">i4"), ("model", f"S{len(model_b)}"),
            ("version_len", ">i4"), ("version", f"S{len(version_b)}"),
            ("date_len", ">i4"), ("date", ">i4"),
            ("user_len", ">i4"), ("user", ">i8"),
            ("items", _array_field(">i8", length)),
            ("scores", _array_field(">f4", length)),
        ])
        rows = np.empty(len(first), dtype=dtype)
        rows["nfields"] = 6
        rows["model_len"], rows["model"] = len(model_b), model_b
        rows["version_len"], rows["version"] = len(version_b), version_b
        rows["date_len"], rows["date"] = 4, (run_date - PG_EPOCH).days
        rows["user_len"], rows["user"] = 8, user_ids[first]
        for name, oid, width, values in (("items", _INT8_OID, 8, item_ids), ("scores", _FLOAT4_OID, 4, scores)):
            field = rows[name]
            field["field_len"] = 20 + length * (4 + width)
            field["ndim"], field["has_nulls"], field["element_oid"] = 1, 0, oid
            field["dim"], field["lower_bound"] = length, 1
            field["values"]["len"] = width
            field["values"]["v"] = np.asarray(values)[at]
        chunks.append(rows.tobytes())
    chunks.append(COPY_TRAILER)
    return io.BytesIO(b"".join(chunks))
