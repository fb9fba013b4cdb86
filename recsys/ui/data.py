"""What the Recsys page shows, read from the data database as plain values.

One function per panel, each running one query of `sql/queries/ui/*.sql`.
The per-model retention panel returns None while `model_retention` (migration
0002) is missing, so the page can say "no data yet" instead of failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Sequence

import psycopg2.extensions

from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import DataValidationError, SchemaMissingError
from recsys.lookup import HistoryEvent, ListedItem, user_history, user_list

logger = logging.getLogger(__name__)

MODEL_RETENTION_COLUMNS = ("model_version", "serve_day", "day_n", "users_served", "retained_users", "is_mature")


@dataclass(frozen=True)
class Series:
    """One line of a chart: `points` are (x, y) in x order; `band` is (x, low, high)."""

    label: str
    points: list[tuple[date, float]]
    band: list[tuple[date, float, float]] = field(default_factory=list)
    dashed: bool = False


@dataclass(frozen=True)
class ModelRunRow:
    model: str
    model_version: str
    model_kind: str
    run_date: date
    status: str
    n_interactions: int | None
    n_users: int | None
    n_items: int | None
    metrics: dict[str, Any]
    triggered_by: str | None
    created_at: datetime
    published_at: datetime | None


@dataclass(frozen=True)
class HeatCell:
    """A retention cell; `rate` is None while the cell is immature (never 0)."""

    cohort_date: date
    day_n: int
    cohort_size: int
    retained_users: int | None
    rate: float | None
    is_mature: bool


@dataclass(frozen=True)
class LiveModel:
    model: str
    model_version: str
    run_date: date
    published_at: datetime
    model_kind: str | None
    metrics: dict[str, Any]


def model_runs(settings: Settings, limit: int = 50, model: str | None = None, date_from: date | None = None,
               date_to: date | None = None) -> list[ModelRunRow]:
    """The newest `limit` rows of the registry, of one model and a range of as-of dates when given."""
    rows = _fetch(settings, load_sql("ui/model_runs"),
                  {"limit": limit, "model": model, "date_from": date_from, "date_to": date_to},
                  required=("model_runs",))
    return [ModelRunRow(*row) for row in rows]


def eval_series(settings: Settings, k: int = 10, metrics: Sequence[str] = ("ndcg", "recall"),
                days: int = 120) -> dict[str, dict[str, list[Series]]]:
    """Hold-out metric@k over as-of dates: {model: {metric: [Series per subject]}}.

    The model's own line comes first, baselines (dashed) after it.
    """
    rows = _fetch(settings, load_sql("ui/eval_series"), {"k": k, "metrics": list(metrics), "days": days},
                  required=("model_runs", "eval_metrics"))
    grouped: dict[str, dict[str, dict[str, list[tuple[date, float]]]]] = {}
    for model, run_date, subject, metric, value, _n_users in rows:
        grouped.setdefault(model, {}).setdefault(metric, {}).setdefault(subject, []).append((run_date, float(value)))
    out: dict[str, dict[str, list[Series]]] = {}
    for model, by_metric in grouped.items():
        out[model] = {}
        for metric in metrics:
            subjects = by_metric.get(metric, {})
            order = sorted(subjects, key=lambda s: (s != "model", s))
            out[model][metric] = [Series(label=s, points=subjects[s], dashed=s != "model") for s in order]
    return out


def retention_heatmap(settings: Settings, kind: str = "classic", cohorts: int = 30) -> list[HeatCell]:
    """Cells of the newest `cohorts` cohorts of one retention kind, by cohort then N."""
    rows = _fetch(settings, load_sql("ui/retention_heatmap"), {"kind": kind, "cohorts": cohorts},
                  required=("retention",))
    return [HeatCell(c, int(n), int(size), None if k is None else int(k), None if r is None else float(r), bool(m))
            for c, n, size, k, r, m in rows]


def model_retention(settings: Settings, day_ns: Sequence[int] = (1, 7),
                    days: int = 120) -> dict[int, list[Series]] | None:
    """Per-model N-day retention with Wilson 95% bands: {N: [Series per model]}.

    None when `model_retention` (migration 0002) is not in the schema.
    """
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        if not _has_columns(cur, "model_retention", MODEL_RETENTION_COLUMNS):
            return None
        cur.execute(load_sql("ui/model_retention"), {"day_ns": list(day_ns), "days": days})
        rows = cur.fetchall()
    grouped: dict[int, dict[str, list[tuple]]] = {n: {} for n in day_ns}
    for model, day_n, serve_day, _served, _retained, rate, low, high in rows:
        grouped[int(day_n)].setdefault(model, []).append((serve_day, float(rate), float(low), float(high)))
    return {n: [Series(label=model, points=[(d, r) for d, r, _, _ in cells],
                       band=[(d, lo, hi) for d, _, lo, hi in cells])
                for model, cells in sorted(by_model.items())]
            for n, by_model in grouped.items()}


def live_models(settings: Settings) -> list[LiveModel]:
    """The live version of each model and when it was published."""
    rows = _fetch(settings, load_sql("ui/live_models"), {}, required=("live_models", "model_runs"))
    return [LiveModel(model, version, run_date, published_at, kind, metrics or {})
            for model, version, run_date, published_at, kind, metrics in rows]


@dataclass(frozen=True)
class ServingAlias:
    """A serving alias, the model it serves, and why (the reason of the night that chose it)."""

    alias: str
    model: str
    run_date: date
    reason: str | None


def serving_aliases(settings: Settings) -> list[ServingAlias]:
    """Each serving alias and the model whose lists it serves."""
    rows = _fetch(settings, load_sql("ui/aliases"), {}, required=("serving_aliases", "alias_choices"))
    return [ServingAlias(*row) for row in rows]


def ope_series(settings: Settings, days: int = 120) -> list[Series]:
    """Predicted (with its interval) and realised return rate per policy over nights."""
    rows = _fetch(settings, load_sql("ui/ope_series"), {"days": days}, required=("ope_estimates",))
    by_policy: dict[str, list[tuple]] = {}
    for policy, run_date, predicted, low, high, realised in rows:
        by_policy.setdefault(policy, []).append((run_date, predicted, low, high, realised))
    out: list[Series] = []
    for policy, cells in sorted(by_policy.items()):
        out.append(Series(label=f"{policy} predicted",
                          points=[(d, float(p)) for d, p, _, _, _ in cells if p is not None],
                          band=[(d, float(lo), float(hi)) for d, _, lo, hi, _ in cells
                                if lo is not None and hi is not None]))
        out.append(Series(label=f"{policy} realised", dashed=True,
                          points=[(d, float(r)) for d, _, _, _, r in cells if r is not None]))
    return out


@dataclass(frozen=True)
class ListedItemCount:
    """One of the items a model's live lists hold most often."""

    place: int
    item_key: str
    title: str | None
    topic: str | None
    lists: int


@dataclass(frozen=True)
class ListOverview:
    """What one model's live lists hold: users with a list, distinct items, the most listed items."""

    model: str
    users: int
    distinct_items: int
    top: list[ListedItemCount]


def list_overview(settings: Settings, top: int = 10) -> list[ListOverview]:
    """Per live model, the `top` items its lists hold most often, with their titles."""
    rows = _fetch(settings, load_sql("ui/list_overview"), {"top": top},
                  required=("live_models", "items", "recommendation_lists"))
    grouped: dict[str, ListOverview] = {}
    for model, place, key, title, topic, lists, distinct_items, users in rows:
        overview = grouped.setdefault(model, ListOverview(model, int(users), int(distinct_items), []))
        overview.top.append(ListedItemCount(int(place), key, title, topic, int(lists)))
    return list(grouped.values())


def user_lists(settings: Settings, user: str, k: int) -> dict[str, list[ListedItem]]:
    """Each live model's list for `user` (the log's key or an integer id), with titles; models without one are left out.

    Raises:
        UnknownUserError: an integer id on a log whose users have text keys.
    """
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "live_models", "items", "recommendation_lists")
        cur.execute(load_sql("ui/live_model_names"))
        models = [model for (model,) in cur.fetchall()]
        lists = {model: user_list(cur, model, user, k) for model in models}
    return {model: listed for model, listed in lists.items() if listed}


def recent_history(settings: Settings, user: str, limit: int = 20) -> list[HistoryEvent] | str:
    """`user`'s newest events in the log, with titles; or why they cannot be read (the log is
    missing or unreadable), for the page to say instead of failing."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        try:
            return user_history(cur, settings, user, limit)
        except (SchemaMissingError, DataValidationError) as exc:
            return f"The log cannot be read: {exc}"


@dataclass(frozen=True)
class HealthCheckRow:
    """One data-health check of one night (recsys.stages.health)."""

    run_date: date
    check_name: str
    value: float | None
    baseline: float | None
    threshold_low: float | None
    threshold_high: float | None
    status: str
    reason: str


def data_health(settings: Settings, nights: int = 7) -> list[HealthCheckRow] | None:
    """The checks of the newest `nights` as-of dates; None when `data_health` (migration 0011) is missing."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        if not _has_columns(cur, "data_health", ("run_date", "check_name", "status", "reason")):
            return None
        cur.execute(load_sql("ui/data_health"), {"nights": nights})
        return [HealthCheckRow(*row) for row in cur.fetchall()]


def _fetch(settings: Settings, query: str, params: dict[str, Any], required: Sequence[str]) -> list[tuple]:
    """Rows of `query` (SQL text) once the tables it reads are known to exist."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, *required)
        cur.execute(query, params)
        return cur.fetchall()


def _has_columns(cur: psycopg2.extensions.cursor, table: str, columns: Sequence[str]) -> bool:
    cur.execute(load_sql("ui/table_columns"), {"table": table})
    present = {row[0] for row in cur.fetchall()}
    if present and not set(columns) <= present:
        logger.warning("table %s lacks columns %s: its panel stays empty", table, sorted(set(columns) - present))
    return set(columns) <= present
