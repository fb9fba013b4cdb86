"""The data interval of a nightly run.

A run for as-of date D covers the interval [D-1 00:00, D 00:00) UTC: it adds the
events of day D-1, trains on a window ending at D 00:00, and its tables serve
during day D. `run_date` in every output table is D. In Airflow, the run's
data interval gives start and end; a run triggered without a logical date
uses the last whole day before `run_after`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone


@dataclass(frozen=True)
class DataInterval:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("data interval bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty data interval [{self.start}, {self.end})")

    @property
    def run_date(self) -> date:
        """The as-of date: the UTC date of the interval end."""
        return self.end.astimezone(timezone.utc).date()

    def train_window_start(self, days: int) -> datetime:
        return self.end - timedelta(days=days)

    @classmethod
    def for_date(cls, run_date: date) -> "DataInterval":
        """The nightly interval whose as-of date is `run_date`: the day before it."""
        end = datetime.combine(run_date, time(0), tzinfo=timezone.utc)
        return cls(end - timedelta(days=1), end)

    @classmethod
    def from_airflow(cls, start: datetime | None, end: datetime | None, run_after: datetime) -> "DataInterval":
        """Interval of an Airflow run; runs with no logical date use the day before `run_after`."""
        if start is not None and end is not None and end > start:
            # plain datetimes: arithmetic on pendulum's (Airflow's) after astimezone(utc) drops the zone
            return cls(_utc(start), _utc(end))
        return cls.for_date(run_after.astimezone(timezone.utc).date())


def _utc(moment: datetime) -> datetime:
    """`moment` as a standard-library datetime in UTC."""
    return datetime.fromtimestamp(moment.timestamp(), tz=timezone.utc)
