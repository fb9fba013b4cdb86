"""The Spark backend's export: the window's positive events as Parquet, one file per UTC day,
against a real PostgreSQL; only new or changed days are written again."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pyarrow.parquet as pq
import pytest

from eventdata import copy_events
from recsys.errors import DataValidationError, EmptyWindowError
from recsys.event_types import EventType
from recsys.interval import DataInterval
from recsys.spark import export_root
from recsys.spark.export import export_window

AS_OF = date(2026, 3, 10)


def _at(day_offset: int, hour: int) -> datetime:
    """A time `day_offset` days before the as-of date, at `hour` UTC."""
    return datetime.combine(AS_OF - timedelta(days=day_offset), datetime.min.time(), tzinfo=timezone.utc) \
        + timedelta(hours=hour)


def _events() -> list[tuple]:
    rows = []
    for day in (3, 2, 1):
        for user in range(1, 6):
            rows.append((_at(day, user), user, 100 + user + day, "click", None))
            rows.append((_at(day, user), user, 200 + user, "impression", None))  # not positive: never exported
            rows.append((_at(day, user + 6), user, 300 + day, "consume", 2.5))
    rows.append(rows[0])  # an exact duplicate: the extract keeps it once, and so does the export
    return rows


def _read_days(export) -> dict[str, pd.DataFrame]:
    return {path.split("day=")[1][:10]: pq.read_table(path).to_pandas() for path in export.day_paths}


def test_days_are_exported_once_and_a_changed_day_is_written_again(settings):
    copy_events(settings, _events())
    interval = DataInterval.for_date(AS_OF)

    first = export_window(settings, interval)
    days = _read_days(first)
    assert sorted(days) == [(AS_OF - timedelta(days=d)).isoformat() for d in (3, 2, 1)]
    assert (first.days_written, first.days_reused) == (3, 0)
    for frame in days.values():  # 5 clicks and 5 consumes a day, the duplicate click once
        assert list(frame.columns) == ["user_id", "item_id", "ts", "strength"]
        assert len(frame) == 10 and not frame.duplicated().any()
        assert set(frame["item_id"]) & set(range(200, 210)) == set()  # impressions stay out
        assert (frame["strength"] == 1.0).all()  # count confidence: each event adds 1
    oldest = days[(AS_OF - timedelta(days=3)).isoformat()]
    assert oldest["ts"].min() == _at(3, 1).timestamp()

    again = export_window(settings, interval)
    assert (again.days_written, again.days_reused) == (0, 3)

    # a late event lands on the middle day: that day alone is read again
    copy_events(settings, [(_at(2, 23), 9, 999, "click", None)])
    late = export_window(settings, interval)
    assert (late.days_written, late.days_reused) == (1, 2)
    middle = _read_days(late)[(AS_OF - timedelta(days=2)).isoformat()]
    assert len(middle) == 11 and 999 in set(middle["item_id"])

    # weights change what the files hold: every day is written again, with the type weights
    types = tuple(EventType(t.name, t.role, 3.0) if t.name == "consume" else t for t in settings.event_types)
    weighted = dataclasses.replace(settings, mf_confidence="weight", event_types=types)
    rewritten = export_window(weighted, interval)
    assert (rewritten.days_written, rewritten.days_reused) == (3, 0)
    frame = _read_days(rewritten)[(AS_OF - timedelta(days=1)).isoformat()]
    assert frame.groupby(frame["item_id"] >= 300)["strength"].unique().map(list).to_dict() == {False: [1.0],
                                                                                               True: [3.0]}
    root = export_root(settings.artifact_dir)
    assert root.is_dir() and not list(root.rglob("*.partial"))


def test_the_next_night_reuses_the_overlapping_days_and_a_short_window_reads_less(settings):
    copy_events(settings, _events())
    export_window(settings, DataInterval.for_date(AS_OF - timedelta(days=1)))  # last night: days 3 and 2
    tonight = export_window(settings, DataInterval.for_date(AS_OF))
    assert (tonight.days_written, tonight.days_reused) == (1, 2)
    short = export_window(dataclasses.replace(settings, train_window_days=2), DataInterval.for_date(AS_OF))
    assert len(short.day_paths) == 2 and short.n_events == 20


def test_value_confidence_refuses_a_negative_value_naming_table_and_column(settings):
    copy_events(settings, _events() + [(_at(1, 20), 3, 400, "consume", -1.0)])
    with pytest.raises(DataValidationError) as raised:
        export_window(dataclasses.replace(settings, mf_confidence="value"), DataInterval.for_date(AS_OF))
    message = str(raised.value)
    assert settings.source_table in message and "value" in message and "negative" in message


def test_a_window_without_positive_events_is_empty(settings):
    copy_events(settings, [(_at(1, 1), 1, 1, "impression", None)])
    with pytest.raises(EmptyWindowError, match="nothing to export"):
        export_window(settings, DataInterval.for_date(AS_OF))
