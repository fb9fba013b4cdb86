"""The extract's CSV reader: chunks of the COPY output joined into one compact frame."""

from __future__ import annotations

import io

import pandas as pd

from recsys.stages.extract import read_window_csv

CSV = b"""1,10,impression,100.0,,
1,10,click,101.0,,7
2,11,consume,102.0,3.5,7
2,12,buy,103.0,,
,13,click,104.0,,
3,13,impression,105.0,,8
"""


def test_event_types_stay_one_category_across_chunks():
    # a Python string per event would be most of the extract's memory (docs/scaling.md)
    frame = read_window_csv(io.BytesIO(CSV), chunk_rows=2)
    assert isinstance(frame["event_type"].dtype, pd.CategoricalDtype)
    assert list(frame["event_type"].astype(str)) == ["impression", "click", "consume", "buy", "click", "impression"]
    assert list(frame["event_type"].cat.categories) == ["buy", "click", "consume", "impression"]


def test_chunks_join_into_the_frame_read_whole():
    chunked, whole = read_window_csv(io.BytesIO(CSV), chunk_rows=2), read_window_csv(io.BytesIO(CSV))
    pd.testing.assert_frame_equal(chunked, whole)
    assert chunked["user_id"].isna().sum() == 1  # a NULL id in one chunk survives the join, for the check
    assert list(chunked["session_id"].astype("Float64").fillna(-1)) == [-1, 7, 7, -1, -1, 8]
