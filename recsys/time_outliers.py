"""Days isolated far before the bulk of a log: a test event, a clock reset, a stray import.

The extract (on the window's event times) and the retention refresh (on its
per-day activity counts) both ask the same question, so both call
`find_far_past_days`. Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

# A gap of more than this many days without an event splits the log into runs.
FAR_PAST_GAP_DAYS = 7
# Runs before the bulk are reported when together they hold under this share of the counts.
FAR_PAST_MAX_SHARE = 0.01


@dataclass(frozen=True)
class FarPastDays:
    """What `find_far_past_days` found.

    Attributes:
        days: the isolated days, oldest first.
        count: events (or active users, whatever was counted) on them.
        days_before_bulk: days from the newest isolated day to the bulk's first day.
        bulk_starts: the first day of the bulk.
    """

    days: tuple[date, ...]
    count: int
    days_before_bulk: int
    bulk_starts: date

    def describe(self, unit: str = "events") -> str:
        """One line for a log message: '1 events on 1 days (2017-09-11), the nearest 74 days before ...'."""
        shown = ", ".join(d.isoformat() for d in self.days[:5]) + (" ..." if len(self.days) > 5 else "")
        return (f"{self.count} {unit} on {len(self.days)} days far before the bulk of the log ({shown}), "
                f"the nearest {self.days_before_bulk} days before its first day {self.bulk_starts.isoformat()}")


def find_far_past_days(day_counts: Sequence[tuple[date, int]], gap_days: int = FAR_PAST_GAP_DAYS,
                       max_share: float = FAR_PAST_MAX_SHARE) -> FarPastDays | None:
    """The days isolated before the bulk of a log, or None when there are none.

    The bulk is the run of days, split wherever the log has no count for more
    than `gap_days` days, that holds the largest total; the days of earlier runs
    are reported when together they hold under `max_share` of the total (a log
    that really started with a quiet period is not an outlier).

    Args:
        day_counts: (day, count) pairs, one per day with a count > 0, in any order.
        gap_days: the longest silence inside one run.
        max_share: the share of the total under which earlier runs count as isolated.
    """
    ordered = sorted((d, int(n)) for d, n in day_counts if n > 0)
    if not ordered:
        return None
    runs: list[list[tuple[date, int]]] = [[ordered[0]]]
    for previous, current in zip(ordered, ordered[1:]):
        if (current[0] - previous[0]).days > gap_days:
            runs.append([])
        runs[-1].append(current)
    totals = [sum(n for _, n in run) for run in runs]
    bulk = max(range(len(runs)), key=totals.__getitem__)  # ties: the earliest run is the bulk
    isolated_count = sum(totals[:bulk])
    if bulk == 0 or isolated_count >= max_share * sum(totals):
        return None
    isolated = [d for run in runs[:bulk] for d, _ in run]
    bulk_starts = runs[bulk][0][0]
    return FarPastDays(days=tuple(isolated), count=isolated_count,
                       days_before_bulk=(bulk_starts - isolated[-1]).days, bulk_starts=bulk_starts)
