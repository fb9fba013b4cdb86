"""The model registry as `recsys models list` shows it: one line per version, or JSON.

`read_entries` reads the rows (sql/queries/cli/model_runs_list.sql); `format_table` and
`as_records` are pure functions of them, so the layout is tested without a database.

The headline figure is the one the model is read out by (`catalogue.ModelSpec.readout`):
the hold-out NDCG@K for "holdout" models, the doubly robust estimate of the D1 return rate
on the night's logged day for "off_policy" ones. "vs live" and "vs pop" are differences
on the same users (hold-out) or the same logged day (DR): positive means this version did better.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Sequence

from recsys import catalogue
from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables

HEADLINE_RANKING_METRIC = "ndcg"
POPULARITY_MODEL = "baseline_popular"
MISSING = "-"
LEGEND = "vs live, vs pop: value minus the live model's, popularity's (same hold-out users or logged day)"
ELLIPSIS = "..."  # ASCII: the table may go to a pipe or a terminal without UTF-8


@dataclass(frozen=True)
class RegistryEntry:
    """One `model_runs` row with its headline figures; the field names are the JSON keys.

    `metric` is e.g. "ndcg@10" or "dr_return@10"; `live_version` is the live version the
    figures compare with (the gate's champion, else the version live now); `failure` is
    `model_runs.metrics.last_failure` (stage, error, error_type, at); `metrics` the rest of
    `model_runs.metrics` (the hold-out summary).
    """

    version: str
    model: str
    kind: str
    run_date: date
    status: str
    is_live: bool
    metric: str
    value: float | None
    live_version: str | None
    live_value: float | None
    popularity_value: float | None
    gate_accepted: bool | None
    gate_reason: str | None
    failure: dict[str, Any] | None
    metrics: dict[str, Any]
    triggered_by: str | None
    n_interactions: int | None
    n_users: int | None
    n_items: int | None
    data_interval_start: datetime
    data_interval_end: datetime
    backend: str | None = None  # where an MF version was fitted: torch or spark (model_runs.params)


def read_entries(settings: Settings, model: str | None = None, limit: int = 20) -> list[RegistryEntry]:
    """The newest `limit` versions (of `model`, or of every model), newest date first."""
    off_policy = [spec.name for spec in catalogue.MODELS if spec.readout == "off_policy"]
    params = {"model": model, "limit": limit, "metric": HEADLINE_RANKING_METRIC, "k": settings.k,
              "off_policy_models": off_policy, "popularity_model": POPULARITY_MODEL}
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "model_runs", "eval_metrics", "live_models")
        cur.execute(load_sql("cli/model_runs_list"), params)
        rows = cur.fetchall()
    return [RegistryEntry(version, model_, kind, run_date, status, is_live, f"{metric}@{settings.k}", value,
                          live_version, live_value, popularity_value, gate_accepted, gate_reason, failure,
                          summary, triggered_by, n_interactions, n_users, n_items, start, end, backend)
            for (version, model_, kind, run_date, status, is_live, metric, value, live_version, live_value,
                 popularity_value, gate_accepted, gate_reason, failure, summary, triggered_by, n_interactions,
                 n_users, n_items, start, end, backend) in rows]


def as_records(entries: Sequence[RegistryEntry]) -> list[dict[str, Any]]:
    """The entries as JSON-ready objects, every key always present (None where unknown)."""
    return [{key: value.isoformat() if isinstance(value, (date, datetime)) else value
             for key, value in asdict(entry).items()} for entry in entries]


def decision(entry: RegistryEntry) -> str:
    """The gate's verdict and reason, or where the version failed, on one line."""
    failure = entry.failure or {}
    failed = f"failed at {failure.get('stage', '?')}: {_error(failure)}" if failure else ""
    if entry.status == "failed" and failed:
        return _one_line(failed)
    if entry.gate_reason is None:
        text = "not gated yet" if entry.status == "trained" else MISSING
    else:
        text = f"{'accepted' if entry.gate_accepted else 'rejected'}: {entry.gate_reason}"
    if failed:  # a failed re-run of a version that stays live keeps its earlier verdict
        text = f"{text}; last re-run {failed}"
    return _one_line(text)


def format_table(entries: Sequence[RegistryEntry], width: int | None) -> str:
    """The entries as aligned columns, every line cut to `width` characters (None: not cut).

    Lines are cut rather than wrapped so one version stays one line; the gate's
    reason comes last because it is the long, variable part.
    """
    header = ("version", "status", "metric", "value", "vs live", "vs pop", "gate")
    right = {3, 4, 5}  # numbers line up on the decimal point
    # no live marker: a version is `published` exactly while it is live (superseded after)
    rows = [(e.version, e.status, e.metric, _number(e.value),
             _delta(e.value, e.live_value), _delta(e.value, e.popularity_value), decision(e)) for e in entries]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]

    def line(cells: Sequence[str]) -> str:
        fixed = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return _cut("  ".join([*fixed, cells[-1]]).rstrip(), width)

    longest = max((len(row[-1]) for row in rows), default=0)
    if width is not None:  # the rule under the header stops where the lines are cut
        longest = min(longest, width - sum(w + 2 for w in widths))
    dashes = [*("-" * w for w in widths), "-" * max(len(header[-1]), longest)]
    return "\n".join([line(header), line(dashes), *(line(row) for row in rows), _cut(LEGEND, width)])


def _number(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4f}"


def _delta(value: float | None, other: float | None) -> str:
    return MISSING if value is None or other is None else f"{value - other:+.4f}"


def _error(failure: dict[str, Any]) -> str:
    kind = failure.get("error_type")
    error = str(failure.get("error", ""))
    return f"{kind}: {error}" if kind and kind != "str" else error


def _one_line(text: str) -> str:
    # errors carry newlines and indentation (psycopg2's, tracebacks): one space each
    return " ".join(text.split())


def _cut(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[:max(width - len(ELLIPSIS), 0)] + ELLIPSIS[:width]
