"""Issue #18's report card: every hold-out candidate on five real and simulated logs, through the real nightly.

For each data set (MovieLens 100K, MovieLens latest-small, the MIND sample, the Gowalla
head, the demo's simulated log; the Taobao head as a format check only) the bench makes
a fresh database, loads the data as a user would (`recsys load movielens`, `recsys load
mind`, `recsys simulate`, or the team's own table and a view as docs/real-logs.md writes
them), and runs the real night (`recsys.pipeline.run_night`: extract, train with the
nightly searches, evaluate, gate, score, publish, choose, retention) on 2 or 3
consecutive as-of dates with the candidates mf_als, mf_bpr, baseline_popular,
baseline_trending, itemknn and ease. The RL models are left out: their nightly training
takes minutes per data set, and they have no ranking hold-out (their read-out is OPE).

After the last night, each candidate's version is re-scored on the hold-out the way
`recsys.stages.evaluate` scored it (the same split, the version's own chosen
hyper-parameters refitted on the training part, the same top-K), to get each hold-out
user's NDCG@10 and recall@10 (`recsys.metrics.ranking.per_user_ranking`); the means are
checked against what the night wrote to `eval_metrics`. From them: 95% percentile
bootstrap intervals over users (2,000 resamples, seed 0) and, for each learned model
(mf_*, itemknn, ease), the paired bootstrap interval of its NDCG@10 minus each
baseline's on the same users. Where the log has impressions (MIND, the simulated log),
AUC and MRR per impression (`recsys.metrics.impressions`, MIND's definitions) over the
hold-out day's impressions of users with history, items the model does not know scored
below every other.

Hold-outs: the pipeline's default, the window's last day, so the gate compares each
new version with the live one on the same users; on the two MovieLens sets that day
holds 3-17 users whatever the date, so they use `RECSYS_HOLDOUT=user_last_day` (each
user's own last active day: 344 and ~270 users) and the gate has no common hold-out
there (it publishes the fresher model and says so). The winner is what the serving
alias `default` serves after the last night (`serving_aliases`, `alias_choices`).

Ends with `SUMMARY datasets=<n> winner_ge_best_baseline=<n> learned_beats_baselines=<n>
worse_published=<n> nights=<n> gate_compared=<n> worse_within_tolerance=<n>`:
worse_published counts (model, night) pairs where tonight's version went live unforced
while its hold-out figure was below the live version's on the same users, and
worse_within_tolerance how many of those the gate's relative tolerance
(RECSYS_GATE_RELATIVE_TOLERANCE x the live figure) let through. Taobao is in
the table but not in these counts. `--quick`: MovieLens 100K and the simulated log, two
nights each (about a minute); the full run takes about ten.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]
DATASETS_DIR = REPO.parent / "shared" / "datasets"

from _common import bench_database  # noqa: E402

K = 10
CANDIDATES = ("mf_als", "mf_bpr", "baseline_popular", "baseline_trending", "itemknn", "ease")
LEARNED = ("mf_als", "mf_bpr", "itemknn", "ease")
BASELINES = ("baseline_popular", "baseline_trending")
N_BOOTSTRAP = 2000
ALIAS = "default"
# Settings the bench gives the nights unless the environment sets them: EASE fits one L2 weight
# (the middle of its default grid) instead of searching three, because its dense solve over
# every item of the window dominates the night (MIND's 7,000 items: 20-80 s a solve here).
FAST_ENV = {"RECSYS_EASE_LAMBDAS": "300"}

# The teams' own tables and views, as docs/real-logs.md writes them (the user's SQL, not recsys's queries).
LATEST_SMALL_DDL = ("CREATE SCHEMA ml; CREATE TABLE ml.ratings (user_id bigint, movie_id bigint, rating float8, "
                    "rated_at bigint)")
LATEST_SMALL_VIEW = ("CREATE VIEW ml.recsys_events AS SELECT to_timestamp(rated_at) AS event_time, user_id, "
                     "movie_id AS item_id, 'consume'::text AS event_type, rating AS value FROM ml.ratings")
GOWALLA_DDL = ("CREATE SCHEMA geo; CREATE TABLE geo.checkins (user_id bigint, checked_at timestamptz, "
               "latitude float8, longitude float8, location_id bigint)")
GOWALLA_VIEW = ("CREATE VIEW geo.recsys_events AS SELECT checked_at AS event_time, user_id, "
                "location_id AS item_id, 'consume'::text AS event_type FROM geo.checkins")
TAOBAO_DDL = ("CREATE SCHEMA shop; CREATE TABLE shop.user_behavior (user_id bigint, item_id bigint, "
              "category_id bigint, behavior text, ts bigint)")
TAOBAO_VIEW = ("CREATE VIEW shop.recsys_events AS SELECT to_timestamp(ts) AS event_time, user_id, item_id, "
               "behavior AS event_type FROM shop.user_behavior")
TAOBAO_TYPES = "pv:positive:1,cart:positive:2,fav:positive:2,buy:positive:4"


@dataclass(frozen=True)
class DataSet:
    """One data set of the report card: how a user loads it and the nights it gets."""

    name: str
    label: str
    files: tuple[str, ...]               # under shared/datasets, checked before anything runs
    load: Callable[[Any], str]            # (settings) -> what was loaded, one line
    nights: tuple[date, ...]
    overrides: dict[str, Any]             # Settings fields (event_types as RECSYS_EVENT_TYPES text)
    format_check: bool = False            # shown, not counted in the SUMMARY
    why_dates: str = ""


def _team_table(settings: Any, ddl: str, path: Path, copy_options: str, view: str) -> None:
    """A team's own table, a real file COPYed into it byte for byte, and the view that maps it."""
    from recsys.db import engine as db

    table = ddl.split("CREATE TABLE ", 1)[1].split(" ", 1)[0]
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(ddl)
        cur.copy_expert(f"COPY {table} FROM STDIN {copy_options}", io.BytesIO(path.read_bytes()))
        cur.execute(view)


def _load_movielens(settings: Any) -> str:
    from recsys.loaders.movielens import load_movielens

    return f"recsys load movielens u.data: {load_movielens(settings, DATASETS_DIR / 'movielens-100k' / 'u.data')} ratings"


def _load_latest_small(settings: Any) -> str:
    _team_table(settings, LATEST_SMALL_DDL, DATASETS_DIR / "movielens-latest-small" / "ratings.csv",
                "WITH (FORMAT csv, HEADER true)", LATEST_SMALL_VIEW)
    return "ratings.csv into the team's ml.ratings, view ml.recsys_events"


def _load_mind(settings: Any) -> str:
    from recsys.loaders.mind import load_mind

    done = load_mind(settings, DATASETS_DIR / "mind-small-sample")
    return f"recsys load mind: {done.impressions} impressions, {done.slots} slots, {done.clicks} clicks; mind_events"


def _load_gowalla(settings: Any) -> str:
    _team_table(settings, GOWALLA_DDL, DATASETS_DIR / "gowalla-checkins-head50k" / "Gowalla_totalCheckins50000.txt",
                "", GOWALLA_VIEW)
    return "the check-ins into the team's geo.checkins, view geo.recsys_events"


def _load_taobao(settings: Any) -> str:
    _team_table(settings, TAOBAO_DDL, DATASETS_DIR / "taobao-userbehavior-head" / "UserBehavior.csv",
                "WITH (FORMAT csv)", TAOBAO_VIEW)
    return f"UserBehavior.csv into shop.user_behavior, view shop.recsys_events, RECSYS_EVENT_TYPES={TAOBAO_TYPES}"


def _load_simulated(settings: Any) -> str:
    from recsys.sim.synthetic_log import simulate_log

    # what scripts/demo.sh simulates by default
    done = simulate_log(settings, days=28, users=3000, items=1500, seed=7, start_date=date(2026, 1, 1))
    return f"recsys simulate --days 28 --users 3000 --items 1500 --seed 7: {done.events} events"


def _days(last: date, n: int) -> tuple[date, ...]:
    return tuple(last - timedelta(days=back) for back in range(n - 1, -1, -1))


def datasets(quick: bool) -> list[DataSet]:
    """The report card's data sets; `quick`: MovieLens 100K and the simulated log, two nights each.

    MIND is not in the quick mode: EASE's dense solve over the 7,000 items of its window takes
    20-80 s on this machine, twice a night, so two MIND nights alone take about two minutes."""
    nights = 2 if quick else 3
    every = [
        DataSet("movielens-100k", "MovieLens 100K", ("movielens-100k/u.data",), _load_movielens,
                _days(date(1998, 4, 23), 2), {"train_window_days": 365, "holdout": "user_last_day"},
                why_dates="the day after the last rating; per-user last-day hold-out (the window's last day holds 8)"),
        DataSet("movielens-latest-small", "MovieLens latest-small", ("movielens-latest-small/ratings.csv",),
                _load_latest_small, _days(date(2018, 9, 25), 2),
                {"source_table": "ml.recsys_events", "train_window_days": 8300, "holdout": "user_last_day"},
                why_dates="the day after the last rating, the whole 22 years as the window; per-user last-day "
                          "hold-out (the window's last day holds 1-5 users on any date)"),
        DataSet("mind-small-sample", "MIND sample", ("mind-small-sample/behaviors.tsv", "mind-small-sample/news.tsv"),
                _load_mind, _days(date(2019, 11, 15), nights), {"source_table": "mind_events", "train_window_days": 7},
                why_dates="the nights after the last days of the log (hold-out days 11-12 to 11-14)"),
        DataSet("gowalla-checkins-head50k", "Gowalla head", ("gowalla-checkins-head50k/Gowalla_totalCheckins50000.txt",),
                _load_gowalla, _days(date(2010, 3, 15), nights),
                {"source_table": "geo.recsys_events", "train_window_days": 30},
                why_dates="hold-out days 2010-03-12 to 03-14, the busiest of the head (45-62 users with a new "
                          "location; the head's last days hold 2-4)"),
        DataSet("simulated", "Simulated log (demo)", (), _load_simulated, _days(date(2026, 1, 29), nights), {},
                why_dates="the demo's nights (it runs 2026-01-27 to 01-29)"),
        DataSet("taobao-userbehavior-head", "Taobao head (format check)", ("taobao-userbehavior-head/UserBehavior.csv",),
                _load_taobao, _days(date(2017, 12, 4), nights),
                {"source_table": "shop.recsys_events", "train_window_days": 120, "mf_confidence": "weight",
                 "event_types": TAOBAO_TYPES},
                format_check=True, why_dates="the nights after the log's last days; 43 users: a format check"),
    ]
    return [d for d in every if d.name in ("movielens-100k", "simulated")] if quick else every


# ----------------------------------------------------------------------------------------------------------------
# What the bench keeps of a data set's run, and the table built from it (pure: tests/test_bench_quality.py)


@dataclass
class NightRecord:
    """One model on one night: did tonight's version go live, and against what figure."""

    run_date: date
    model: str
    went_live: bool
    forced: bool
    figure: float | None            # tonight's version on the hold-out (eval_metrics subject 'model')
    champion: float | None          # the then-live version on the same users ('champion')
    reason: str = ""


@dataclass
class ModelResult:
    """A candidate's version of the last night, re-scored per user (and per impression)."""

    model: str
    kind: str
    status: str                      # live / rejected / failed / ...
    ndcg: np.ndarray | None = None   # (n_users,) per hold-out user, in the split's user order
    recall: np.ndarray | None = None
    auc: np.ndarray | None = None    # (n_impressions,) per impression
    mrr: np.ndarray | None = None
    stored_ndcg: float | None = None  # what the night wrote to eval_metrics, for the check
    live_figure: float | None = None  # the model's live lists on tonight's hold-out (what choose compared)
    note: str = ""


@dataclass
class DataSetResult:
    name: str
    label: str
    format_check: bool
    holdout: str
    nights: list[date]
    models: list[ModelResult]
    records: list[NightRecord]
    winner: str | None
    alias_figures: dict[str, Any] = field(default_factory=dict)
    loaded: str = ""
    seconds: float = 0.0
    night_seconds: list[float] = field(default_factory=list)
    impressions: int = 0
    notes: list[str] = field(default_factory=list)


def bootstrap_interval(values: np.ndarray, n_resamples: int = N_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of `values` (n,): resampling its entries."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for lo in range(0, n_resamples, 250):  # bounded memory: 250 x n indices at a time
        draws = rng.integers(0, len(values), size=(min(250, n_resamples - lo), len(values)))
        means[lo:lo + len(draws)] = values[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


@dataclass
class Row:
    dataset: str
    model: str
    status: str
    users: int
    ndcg: float | None
    ndcg_ci: tuple[float, float] | None
    recall: float | None
    recall_ci: tuple[float, float] | None
    diff: dict[str, tuple[float, float, float]]   # baseline -> (mean, low, high) of NDCG@10 minus it, paired
    auc: float | None
    auc_ci: tuple[float, float] | None
    mrr: float | None
    mrr_ci: tuple[float, float] | None
    impressions: int
    winner: bool
    beats_baselines: bool
    note: str


@dataclass
class Report:
    rows: list[Row]
    summary: dict[str, int]
    per_dataset: dict[str, dict[str, Any]]


def build_report(results: Sequence[DataSetResult], tolerance: float) -> Report:
    """The table and the SUMMARY counts of the data sets' results (see the module docstring)."""
    rows: list[Row] = []
    summary = {"datasets": 0, "winner_ge_best_baseline": 0, "learned_beats_baselines": 0, "worse_published": 0,
               "nights": 0, "gate_compared": 0, "worse_within_tolerance": 0}
    per_dataset: dict[str, dict[str, Any]] = {}
    for result in results:
        by_model = {m.model: m for m in result.models}
        baselines = [by_model[b] for b in BASELINES if b in by_model and by_model[b].ndcg is not None]
        beaters = []
        for m in result.models:
            diff = {}
            if m.model in LEARNED and m.ndcg is not None:
                for b in baselines:
                    if len(b.ndcg) != len(m.ndcg):
                        continue  # not the same users: no paired comparison
                    delta = m.ndcg - b.ndcg
                    diff[b.model] = (float(delta.mean()), *bootstrap_interval(delta))
            beats = bool(baselines) and len(diff) == len(baselines) and all(d[1] > 0 for d in diff.values())
            if beats:
                beaters.append(m.model)
            rows.append(Row(
                result.label, m.model, m.status, 0 if m.ndcg is None else len(m.ndcg),
                None if m.ndcg is None else float(m.ndcg.mean()),
                None if m.ndcg is None else bootstrap_interval(m.ndcg),
                None if m.recall is None else float(m.recall.mean()),
                None if m.recall is None else bootstrap_interval(m.recall),
                diff,
                None if m.auc is None or not len(m.auc) else float(m.auc.mean()),
                None if m.auc is None or not len(m.auc) else bootstrap_interval(m.auc),
                None if m.mrr is None or not len(m.mrr) else float(m.mrr.mean()),
                None if m.mrr is None or not len(m.mrr) else bootstrap_interval(m.mrr),
                0 if m.auc is None else len(m.auc), m.model == result.winner, beats, m.note))
        figures = {model: f.get("figure") for model, f in result.alias_figures.items()}
        winner_figure = figures.get(result.winner) if result.winner else None
        best_baseline = max((f for model, f in figures.items() if model in BASELINES and f is not None), default=None)
        winner_ge = winner_figure is not None and (best_baseline is None or winner_figure >= best_baseline)
        compared = [r for r in result.records if r.went_live and not r.forced and r.figure is not None
                    and r.champion is not None]
        worse = [r for r in compared if r.figure < r.champion]
        per_dataset[result.label] = {"winner": result.winner, "winner_figure": winner_figure,
                                     "best_baseline_figure": best_baseline, "winner_ge_best_baseline": winner_ge,
                                     "learned_beating_baselines": beaters, "worse_published": worse,
                                     "gate_compared": len(compared)}
        if result.format_check:
            continue
        summary["datasets"] += 1
        summary["winner_ge_best_baseline"] += winner_ge
        summary["learned_beats_baselines"] += bool(beaters)
        summary["worse_published"] += len(worse)
        # the ranking gate's tolerance is relative to the live version's figure
        summary["worse_within_tolerance"] += sum(r.figure >= r.champion * (1 - tolerance) for r in worse)
        summary["nights"] += len(result.nights)
        summary["gate_compared"] += len(compared)
    return Report(rows, summary, per_dataset)


def summary_line(summary: dict[str, int]) -> str:
    return "SUMMARY " + " ".join(f"{key}={value}" for key, value in summary.items())


def _ci(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else f"{value:.4f}"


def table_markdown(report: Report) -> str:
    """The report card as one Markdown table."""
    lines = ["| data set | model | version | hold-out users | NDCG@10 [95% CI] | recall@10 [95% CI] | "
             "NDCG@10 - popular [95% CI] | NDCG@10 - trending [95% CI] | AUC [95% CI] | MRR [95% CI] | impressions |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report.rows:
        diffs = [(_ci(*((r.diff[b][0], r.diff[b][1:]))) + (" ✓" if r.diff[b][1] > 0 else "")) if b in r.diff else ""
                 for b in BASELINES]
        model = f"**{r.model}** (served)" if r.winner else r.model
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.dataset} | {model} | {r.status}{note} | {r.users or '-'} | {_ci(r.ndcg, r.ndcg_ci)} | "
                     f"{_ci(r.recall, r.recall_ci)} | {diffs[0]} | {diffs[1]} | {_ci(r.auc, r.auc_ci)} | "
                     f"{_ci(r.mrr, r.mrr_ci)} | {r.impressions or ''} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# Running a data set


def _settings(spec: DataSet, url: str, artifact_dir: Path) -> Any:
    from recsys.config import Settings

    from recsys.settings_table import BY_NAME

    overrides = dict(spec.overrides)
    if isinstance(overrides.get("event_types"), str):  # declared as RECSYS_EVENT_TYPES text, parsed as it is
        overrides["event_types"] = BY_NAME["RECSYS_EVENT_TYPES"].parse(overrides["event_types"])
    # K is fixed: the table's columns are @10 whatever RECSYS_K says
    return Settings.from_env(database_url=url, artifact_dir=artifact_dir, k=K, **overrides)


def _night_records(settings: Any, run_date: date) -> tuple[list[NightRecord], dict[str, dict[str, Any]]]:
    from recsys.db.engine import load_sql, raw_connection

    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("bench/night_runs"), {"run_date": run_date, "metric": "ndcg", "k": settings.k})
        rows = cur.fetchall()
    records, runs = [], {}
    for model, kind, version, status, is_live, gate, figure, champion, n_users in rows:
        gate = gate or {}
        reason = gate.get("reason", "")
        if status == "rejected" and champion is not None:
            reason = f"{gate.get('champion_version')} stays live: {champion:.4f} on these users"
        records.append(NightRecord(run_date, model, bool(is_live), reason.startswith("forced"), figure, champion,
                                   reason))
        runs[model] = {"kind": kind, "version": version, "status": status, "is_live": is_live, "figure": figure,
                       "champion": champion, "reason": reason}
    return records, runs


def _alias(settings: Any, run_date: date) -> tuple[str | None, dict[str, Any], str]:
    from recsys.db.engine import load_sql, raw_connection

    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("bench/alias_choice"), {"alias": ALIAS, "run_date": run_date})
        served, _chosen, _version, reason, figures = cur.fetchone()
    return served, figures or {}, reason or ""


def _holdout_impressions(settings: Any, day_start: datetime, day_end: datetime) -> np.ndarray | None:
    """(session, user, item, clicked) int64 rows of the hold-out day's impressions; None: the log has no sessions."""
    from psycopg2 import sql

    from recsys.db.engine import load_sql, raw_connection
    from recsys.source import inspect_source

    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        source = inspect_source(cur, settings)
        if not source.has("session_id"):
            return None
        query = sql.SQL(load_sql("bench/holdout_impressions")).format(source=source.relation())
        cur.execute(query, {"day_start": day_start, "day_end": day_end,
                            "impression_types": list(settings.impression_types),
                            "click_types": list(settings.rl_click_types)})
        rows = cur.fetchall()
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def _rescore(settings: Any, interval: Any, dataset_path: str, runs: dict[str, dict[str, Any]],
             impressions: np.ndarray | None) -> tuple[list[ModelResult], int]:
    """Each candidate's version re-scored per hold-out user as recsys.stages.evaluate scores it."""
    from recsys import catalogue
    from recsys.dataset import WindowDataset
    from recsys.db.registry import get_run
    from recsys.metrics.impressions import impression_metrics
    from recsys.metrics.ranking import per_user_ranking, temporal_split
    from recsys.models.pair_scores import item_item_pair_scores
    from recsys.models.topk import top_k_factors
    # evaluate's own refits (private: the bench must score exactly what the stage scored, not a copy of it)
    from recsys.stages.evaluate import _fit_item_item_on_split, _fit_on_split
    from recsys.stages.train_item_item import ALGORITHMS as ITEM_ITEM, item_item_top

    dataset = WindowDataset.load(Path(dataset_path))
    split = temporal_split(dataset, settings.positive_types, interval.end, settings.holdout_last_n,
                           holdout=settings.holdout)
    slots = None
    if impressions is not None and len(impressions):
        users = np.searchsorted(dataset.user_ids, impressions[:, 1])
        items = np.searchsorted(dataset.item_ids, impressions[:, 2])
        users, items = np.minimum(users, len(dataset.user_ids) - 1), np.minimum(items, len(dataset.item_ids) - 1)
        known_user = (dataset.user_ids[users] == impressions[:, 1]) & (np.diff(split.train.indptr)[users] > 0)
        known_item = (dataset.item_ids[items] == impressions[:, 2]) & (np.diff(split.train.tocsc().indptr)[items] > 0)
        keep = known_user  # impressions of users with history: the users a model can rank for
        slots = (impressions[keep, 0], users[keep], items[keep], impressions[keep, 3].astype(bool), known_item[keep])
    results = []
    for model in CANDIDATES:
        run = runs.get(model)
        if run is None or run["status"] == "failed":
            results.append(ModelResult(model, catalogue.get(model).kind, "failed" if run else "not trained",
                                       note=(run or {}).get("reason", "")))
            continue
        algorithm = catalogue.get(model).evaluate_kwargs["algorithm"]
        registered = get_run(settings, run["version"])
        meta_path = Path(registered.artifact_path).with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        scores = None
        if algorithm in ITEM_ITEM:
            similarity = _fit_item_item_on_split(settings, algorithm, meta, split)
            top = item_item_top(settings, similarity, split.train, split.users)
            if slots is not None:
                scores = item_item_pair_scores(similarity, split.train, slots[1], slots[2])
        else:
            user_factors, item_factors = _fit_on_split(settings, algorithm, meta, dataset, split)
            top = top_k_factors(user_factors, item_factors, split.train, settings.k, users=split.users,
                                batch_users=settings.score_batch_users)
            if slots is not None:
                scores = np.einsum("nf,nf->n", user_factors[slots[1]], item_factors[slots[2]]).astype(np.float64)
        per_user = per_user_ranking(top, split.relevant, split.users, settings.k) if len(split.users) else \
            {"ndcg": np.empty(0), "recall": np.empty(0)}
        status = "live" if run["is_live"] else run["status"]
        result = ModelResult(model, run["kind"], status, per_user["ndcg"], per_user["recall"],
                             stored_ndcg=run["figure"], note="" if run["is_live"] else run["reason"])
        if scores is not None:
            scores[~slots[4]] = -np.inf  # items the model does not know: below every item it knows
            figures = impression_metrics(slots[0], slots[3], scores, ks=(settings.k,))
            result.auc, result.mrr = figures.auc, figures.mrr
        results.append(result)
    n_impressions = 0 if slots is None else len(np.unique(slots[0]))
    return results, n_impressions


def run_dataset(spec: DataSet, workdir: Path) -> DataSetResult:
    from recsys.interval import DataInterval
    from recsys.pipeline import run_night

    started = time.perf_counter()
    with bench_database(f"recsys_bench_quality_{spec.name.split('-')[0]}", workdir) as url:
        settings = _settings(spec, url, workdir / spec.name / "artifacts")
        loaded = spec.load(settings)
        records: list[NightRecord] = []
        night_seconds, runs, report = [], {}, None
        for run_date in spec.nights:
            night_started = time.perf_counter()
            report = run_night(settings, DataInterval.for_date(run_date), triggered_by="bench", models=CANDIDATES,
                               raise_on_failure=False)
            night_seconds.append(time.perf_counter() - night_started)
            tonight, runs = _night_records(settings, run_date)
            records += tonight
            for step, error in report.failures.items():
                model = step.split(".")[0]
                if model in runs:
                    runs[model]["reason"] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
            slowest = sorted(report.seconds.items(), key=lambda item: -item[1])[:3]
            print(f"  {run_date}: {night_seconds[-1]:.1f} s (slowest: "
                  + ", ".join(f"{step} {sec:.1f} s" for step, sec in slowest) + "); "
                  + ", ".join(f"{m} {r['status']}" for m, r in sorted(runs.items())), flush=True)
        last = spec.nights[-1]
        interval = DataInterval.for_date(last)
        served, alias_figures, reason = _alias(settings, last)
        impressions = None
        if settings.holdout == "last_day" and settings.holdout_last_n <= 0:
            impressions = _holdout_impressions(settings, interval.end - timedelta(days=1), interval.end)
        models, n_impressions = _rescore(settings, interval, report.results["extract"]["dataset_path"], runs,
                                         impressions)
        for m in models:
            if m.model in alias_figures:
                m.live_figure = alias_figures[m.model].get("figure")
    return DataSetResult(spec.name, spec.label, spec.format_check, settings.holdout, list(spec.nights), models,
                         records, served, alias_figures, loaded, time.perf_counter() - started, night_seconds,
                         n_impressions, [reason, spec.why_dates])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="MovieLens 100K and the simulated log, two nights each")
    parser.add_argument("--datasets", help="comma-separated names to run (default: all of the mode)")
    parser.add_argument("--markdown", type=Path,
                        help="write the report as Markdown here (default: docs/quality.md in the full mode)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    specs = datasets(args.quick)
    if args.datasets:
        wanted = [name.strip() for name in args.datasets.split(",")]
        specs = [d for d in datasets(False) if d.name in wanted]
    for spec in specs:
        for file in spec.files:
            if not (DATASETS_DIR / file).is_file():
                print(f"bench/quality.py needs {DATASETS_DIR / file}, which does not exist", file=sys.stderr)
                return 2
    for variable, value in FAST_ENV.items():
        os.environ.setdefault(variable, value)
    from recsys.config import Settings

    tolerance = Settings.from_env().gate_relative_tolerance
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            print(f"{spec.label}: nights {', '.join(d.isoformat() for d in spec.nights)}", flush=True)
            results.append(run_dataset(spec, Path(tmp)))
    seconds = time.perf_counter() - started
    report = build_report(results, tolerance)
    text = render(report, results, seconds, " ".join(["bench/quality.py", *sys.argv[1:]]), tolerance)
    print(text)
    target = args.markdown or (None if args.quick or args.datasets else REPO / "docs" / "quality.md")
    if target is not None:
        page = target.read_text() if target.exists() else ""
        target.write_text(with_generated(page, f"{text}\n\n`{summary_line(report.summary)}`"))
        print(f"(written to {target})")
    print(summary_line(report.summary))
    return 0


def _commit() -> str:
    """The checkout's short commit, '+' when it has changes; '?' outside git."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+" if dirty else "")


BEGIN, END = "<!-- bench/quality.py: generated from here -->", "<!-- bench/quality.py: generated up to here -->"


def with_generated(page: str, text: str) -> str:
    """`page` with the part between the BEGIN and END markers replaced by `text` (the hand-written
    rest of the page stays); a page without markers becomes the generated part alone."""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in page and END in page.split(BEGIN, 1)[1]:
        head, rest = page.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    return block + "\n"


def render(report: Report, results: Sequence[DataSetResult], seconds: float, command: str, tolerance: float) -> str:
    """The whole report: the table, per data set what served and how the nights went, and the checks."""
    out = [f"`{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC (commit {_commit()}), {seconds:.0f} s "
           f"(candidates {', '.join(CANDIDATES)}; K = {K}; {N_BOOTSTRAP} bootstrap resamples; "
           f"relative gate tolerance {tolerance})", "", table_markdown(report), ""]
    for result in results:
        facts = report.per_dataset[result.label]
        drift = [abs(float(m.ndcg.mean()) - m.stored_ndcg) for m in result.models
                 if m.ndcg is not None and len(m.ndcg) and m.stored_ndcg is not None]
        worse = ", ".join(f"{r.model} on {r.run_date} ({r.figure:.4f} < {r.champion:.4f})"
                          for r in facts["worse_published"]) or "none"
        reason, why = (result.notes + ["", ""])[:2]
        out.append(f"- **{result.label}** ({result.loaded}; hold-out {result.holdout}; nights "
                   f"{', '.join(d.isoformat() for d in result.nights)}: {why}; "
                   f"{' + '.join(f'{s:.0f}' for s in result.night_seconds)} s, {result.seconds:.0f} s in all): "
                   f"`{ALIAS}` serves **{result.winner}**: {reason}. Gate comparisons on a common "
                   f"hold-out: {facts['gate_compared']}; worse published: {worse}. Re-scored NDCG@10 vs "
                   f"eval_metrics: max |diff| {max(drift, default=0.0):.2g}.")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
