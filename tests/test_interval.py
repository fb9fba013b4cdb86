from datetime import date, datetime, timedelta, timezone

import pytest

from recsys.interval import DataInterval

UTC = timezone.utc


def test_nightly_interval_is_the_day_before_the_as_of_date():
    interval = DataInterval.for_date(date(2026, 3, 1))
    assert interval.start == datetime(2026, 2, 28, tzinfo=UTC)
    assert interval.end == datetime(2026, 3, 1, tzinfo=UTC)
    assert interval.run_date == date(2026, 3, 1)
    assert interval.train_window_start(7) == datetime(2026, 2, 22, tzinfo=UTC)


def test_airflow_interval_is_used_as_given():
    start, end = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 1, 11, tzinfo=UTC)
    assert DataInterval.from_airflow(start, end, run_after=end + timedelta(hours=5)) == DataInterval(start, end)


def test_airflow_pendulum_datetimes_keep_their_zone_through_window_arithmetic():
    # pendulum's DateTime, after astimezone(utc), loses its zone on subtraction: the window's
    # start was naive and could not be compared with an aware day boundary
    import pendulum

    interval = DataInterval.from_airflow(pendulum.datetime(2026, 1, 10, tz="UTC"),
                                         pendulum.datetime(2026, 1, 11, tz="Europe/Paris"), run_after=None)
    start = interval.train_window_start(90)
    assert start.tzinfo is not None and start == datetime(2025, 10, 12, 23, tzinfo=UTC)
    assert type(interval.end) is datetime and interval.end == datetime(2026, 1, 10, 23, tzinfo=UTC)


def test_a_run_without_logical_date_takes_the_last_whole_day_before_run_after():
    # REST API runs with "logical_date": null have no data interval, only run_after
    interval = DataInterval.from_airflow(None, None, run_after=datetime(2026, 5, 4, 13, 7, tzinfo=UTC))
    assert (interval.start, interval.end) == (datetime(2026, 5, 3, tzinfo=UTC), datetime(2026, 5, 4, tzinfo=UTC))
    # a zero-length interval (CronTriggerTimetable-style) falls back the same way
    at = datetime(2026, 5, 4, tzinfo=UTC)
    assert DataInterval.from_airflow(at, at, run_after=at).run_date == date(2026, 5, 4)


def test_naive_or_empty_intervals_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        DataInterval(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="empty"):
        DataInterval(datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
