"""Day-by-day replay of a news log with impressions (MIND, issue #19): train on the days before,
evaluate on the next day, overall and on cold and warm clicked items apart.

For each replayed day D (by default every day of the log after its first): the training
window is extracted as the night of as-of date D + 1 extracts it (`extract_window`, the last
`RECSYS_TRAIN_WINDOW_DAYS` days up to the end of D), split as the evaluate stage splits it
(`temporal_split`, hold-out = the window's last day, D), and each model is fitted on the
events before D the way the evaluate stage refits it on a hold-out (`recsys.stages.evaluate.
_fit_on_split`: ALS with the configured values, the hybrid with the night's TF-IDF vectors and
the profile weight its nightly search picks on the day before D, the two baselines). The models:
`hybrid`, `mf_als`, `baseline_popular`, `baseline_trending`.

On D:

* **impression metrics** (`recsys.metrics.impressions`: AUC, MRR, nDCG@5, nDCG@10, averaged over
  impressions) on D's impressions of users with a positive event before D, as the evaluate stage
  takes them. An item with no positive event before D is *cold*. `mf_als` and the baselines give a
  cold item -inf (below every known item, as the evaluate stage does: they cannot place it); the
  hybrid scores it from its text (c W and the user's content profile), which is the point of it
  (items without text: -inf for it too). Unlike the evaluate stage, the hybrid's cold scores are
  kept, so the replay measures what the hybrid adds on cold items.
* **top-K hold-out**: recall@K and NDCG@K (RECSYS_K) of each user's new positive items on D, over
  the window's items (which include items first shown on D), as the evaluate stage computes them.
* **cold and warm apart**: for the impression metrics, each impression's positives are split: the
  cold figure of an impression ranks its cold clicked items against all its non-clicked ones (its
  warm clicks left out), the warm figure its warm clicks against the same non-clicks; impressions
  without a cold (warm) click are not in the cold (warm) mean. For the top-K figures, the relevant
  items are restricted to cold (warm) ones and the users to those with at least one.
  A fourth part, `cold_text`, is the cold part with only the cold clicked items that have a text
  in the catalogue (a content vector): on the MIND sample, news.tsv holds 2,000 of the log's
  ~7,000 items, so most cold clicks have no text and no model, the hybrid included, can place them.
* **cold share**: the share of the distinct items clicked on D (all users) that are cold, and the
  share of D's click events on a cold item; and how many of the cold clicked items have a text.

The TF-IDF encoder is fitted on the whole catalogue (news.tsv, as the nightly embed does: the
articles' texts are known when they are published), not on clicks, so no click of D leaks.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from psycopg2 import sql

from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.db.engine import raw_connection
from recsys.errors import ConfigurationError
from recsys.interval import DataInterval
from recsys.metrics.impressions import impression_metrics
from recsys.metrics.ranking import Split, accuracy_per_user, temporal_split
from recsys.models.pair_scores import factor_pair_scores
from recsys.models.topk import top_k_factors
from recsys.source import inspect_source
from recsys.stages.embed import embed_catalogue, load_vectors
from recsys.stages.evaluate import IMPRESSION_KS, _fit_on_split, holdout_slots
from recsys.stages.extract import extract_window
from recsys.stages.train_hybrid import search_weight, vectors_for

logger = logging.getLogger(__name__)

# catalogue model -> the evaluate stage's hold-out algorithm
REPLAY_MODELS: dict[str, str] = {"hybrid": "hybrid", "mf_als": "als", "baseline_popular": "popularity",
                                 "baseline_trending": "trending"}
PARTS = ("all", "cold", "warm", "cold_text")


@dataclass(frozen=True)
class Figures:
    """One model's figures on one part of one day; NaN where the part is empty.

    Attributes:
        auc, mrr, ndcg5, ndcg10: impression metrics averaged over `impressions` impressions.
        recall, ndcg: top-K hold-out figures (K = the result's k) averaged over `users` users.
    """

    auc: float
    mrr: float
    ndcg5: float
    ndcg10: float
    impressions: int
    recall: float
    ndcg: float
    users: int


@dataclass(frozen=True)
class ReplayDay:
    """One replayed day: its counts and each model's figures by part ("all", "cold", "warm")."""

    day: date
    train_positives: int
    clicked_items: int
    cold_items: int
    clicks: int
    cold_clicks: int
    cold_items_with_text: int
    models: dict[str, dict[str, Figures]] = field(default_factory=dict)
    profile_weight: float = float("nan")

    @property
    def cold_item_share(self) -> float:
        return self.cold_items / self.clicked_items if self.clicked_items else float("nan")

    @property
    def cold_click_share(self) -> float:
        return self.cold_clicks / self.clicks if self.clicks else float("nan")


@dataclass(frozen=True)
class ReplayResult:
    days: list[ReplayDay]
    k: int
    seconds: float

    def mean(self, model: str, part: str, metric: str) -> float:
        """The mean over days of one figure (days where it is NaN left out; NaN if none)."""
        values = [getattr(d.models[model][part], metric) for d in self.days if model in d.models]
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else float("nan")


def report_lines(result: ReplayResult) -> list[str]:
    """The replay as text: per day its cold shares and each model's figures by part, then the
    mean AUC over days per part (what `recsys replay` and bench/fresh.py print)."""
    lines = [f"{len(result.days)} day(s) in {result.seconds:.1f}s; per part: per impression AUC / MRR / nDCG@10, "
             f"top-K recall@{result.k} (r), impressions in brackets"]
    for d in result.days:
        lines.append(f"{d.day}: {d.clicked_items} clicked items, {100 * d.cold_item_share:.1f}% cold "
                     f"({100 * d.cold_click_share:.1f}% of {d.clicks} clicks; {d.cold_items_with_text} cold clicked "
                     f"items with a text), hybrid profile weight {d.profile_weight}")
        for model, parts in d.models.items():
            cells = [f"{part} {f.auc:.3f}/{f.mrr:.3f}/{f.ndcg10:.3f} r{f.recall:.3f} [{f.impressions}]"
                     for part, f in parts.items()]
            lines.append(f"  {model:<18} " + "  ".join(cells))
    if result.days:
        for part in PARTS:
            lines.append(f"mean AUC {part:<9} " + "  ".join(f"{m} {result.mean(m, part, 'auc'):.4f}"
                                                         for m in result.days[0].models))
    return lines


def log_days(settings: Settings) -> list[date]:
    """The UTC days on which the source log has events, in order."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        source = inspect_source(cur, settings).relation()
        cur.execute(sql.SQL("SELECT DISTINCT (event_time AT TIME ZONE 'UTC')::date FROM {} AS events"
                            " ORDER BY 1").format(source))
        return [row[0] for row in cur.fetchall()]


def replay(settings: Settings, days: list[date] | None = None,
           models: tuple[str, ...] = tuple(REPLAY_MODELS)) -> ReplayResult:
    """Replay `days` (default: every day of the log after the first) with `models` (REPLAY_MODELS keys).

    Raises:
        ConfigurationError: an unknown model.
        ValueError: a day without a day of log before it.
    """
    unknown = [m for m in models if m not in REPLAY_MODELS]
    if unknown:
        raise ConfigurationError(f"unknown replay model(s) {', '.join(unknown)}: choose from {', '.join(REPLAY_MODELS)}")
    started = time.perf_counter()
    available = log_days(settings)
    if days is None:
        days = available[1:]
    if days and (not available or min(days) <= available[0]):
        raise ValueError(f"replay: each day needs a day of log before it; the log's days are {available}")
    embedded = embed_catalogue(settings) if "hybrid" in models else None
    out = [_replay_day(settings, day, models, embedded.encoder_version if embedded else "") for day in days]
    result = ReplayResult(out, settings.k, round(time.perf_counter() - started, 2))
    for d in out:
        logger.info("replay %s: %d clicked items, %.1f%% cold (%.1f%% of %d clicks); %s", d.day, d.clicked_items,
                    100 * d.cold_item_share, 100 * d.cold_click_share, d.clicks,
                    "; ".join(f"{m} AUC {f['all'].auc:.4f} (cold {f['cold'].auc:.4f}, warm {f['warm'].auc:.4f}) "
                              f"recall@{settings.k} {f['all'].recall:.4f}" for m, f in d.models.items()))
    return result


def _replay_day(settings: Settings, day: date, models: tuple[str, ...], encoder_version: str) -> ReplayDay:
    interval = DataInterval.for_date(day + timedelta(days=1))  # its hold-out day is `day`
    s = dataclasses.replace(settings, artifact_dir=str(Path(settings.artifact_dir) / "replay"))
    dataset = WindowDataset.load(Path(extract_window(s, interval).dataset_path))
    split = temporal_split(dataset, settings.positive_types, interval.end, holdout="last_day")
    cold = np.diff(split.train.tocsc().indptr) == 0  # (n_items,) no positive event before the day
    positives = dataset.positive_mask(settings.positive_types)
    on_day = positives & (dataset.ts >= interval.start.timestamp()) & (dataset.ts < interval.end.timestamp())
    clicked_items = np.unique(dataset.item_index[on_day])
    slots = holdout_slots(settings, dataset, split, interval)
    text = np.zeros(len(dataset.item_ids), bool)  # items with a content vector (a text in the catalogue)
    if encoder_version:
        ids, vectors = load_vectors(settings, encoder_version, item_ids=dataset.item_ids)
        window = vectors_for(dataset.item_ids, ids, vectors, vectors.shape[1] if len(ids) else 1)
        text = np.abs(window).sum(axis=1) > 0
    record = ReplayDay(day, int(split.train_mask.sum()), len(clicked_items), int(cold[clicked_items].sum()),
                       int(on_day.sum()), int(cold[dataset.item_index[on_day]].sum()),
                       int((cold & text)[clicked_items].sum()))
    weight = float("nan")
    for model in models:
        algorithm = REPLAY_MODELS[model]
        meta: dict = {}
        if algorithm == "hybrid":
            weight, _ = search_weight(settings, dataset, interval, window)  # on the day before: never sees D
            meta = {"encoder_version": encoder_version, "profile_weight": weight}
        users, items = _fit_on_split(settings, algorithm, meta, dataset, split)
        # a cold item: only the hybrid can place it, and only from a text
        placeable = ~cold if algorithm != "hybrid" else (~cold | text)
        record.models[model] = _figures(settings, split, slots, users, items, cold, text, placeable)
    return dataclasses.replace(record, profile_weight=weight)


def _figures(settings: Settings, split: Split, slots, users: np.ndarray, items: np.ndarray, cold: np.ndarray,
             text: np.ndarray, placeable: np.ndarray) -> dict[str, Figures]:
    """Each part's figures (PARTS); `cold`, `text`, `placeable`: (n_items,) masks of the window's items."""
    positive_of = {"cold": cold, "warm": ~cold, "cold_text": cold & text}
    k = settings.k
    top = top_k_factors(users, items, split.train, k, users=split.users, batch_users=settings.score_batch_users)
    out = {}
    if slots is not None:
        scores = factor_pair_scores(users, items, slots.user_index, slots.item_index).astype(np.float64)
        scores[~placeable[slots.item_index]] = -np.inf
        codes = slots.impression_codes()
    relevant = split.relevant.tocsr()
    for part in PARTS:
        imp = dict(auc=math.nan, mrr=math.nan, ndcg5=math.nan, ndcg10=math.nan, impressions=0)
        if slots is not None:
            keep = ~slots.clicked if part != "all" else np.ones(len(slots), bool)
            if part != "all":
                keep |= slots.clicked & positive_of[part][slots.item_index]
            m = impression_metrics(codes[keep], slots.clicked[keep], scores[keep], ks=IMPRESSION_KS)
            means = m.means()
            imp = dict(auc=means["auc"], mrr=means["mrr"], ndcg5=means["ndcg@5"], ndcg10=means["ndcg@10"],
                       impressions=len(m.impressions))
        rel = relevant if part == "all" else _only_columns(relevant, positive_of[part])
        rel_users = split.users[np.diff(rel.indptr)[split.users] > 0]
        if len(rel_users):
            acc = accuracy_per_user(top, rel, rel_users, k)
            recall, ndcg = float(acc["recall"].mean()), float(acc["ndcg"].mean())
        else:
            recall = ndcg = math.nan
        out[part] = Figures(**imp, recall=recall, ndcg=ndcg, users=len(rel_users))
    return out


def _only_columns(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    out = (matrix @ sp.diags(keep.astype(np.float32))).tocsr()
    out.eliminate_zeros()
    return out


def as_rows(result: ReplayResult) -> list[dict]:
    """One flat dict per (day, model, part), for printing or JSON."""
    return [{"day": d.day.isoformat(), "model": model, "part": part, "cold_item_share": d.cold_item_share,
             "cold_click_share": d.cold_click_share, **dataclasses.asdict(f)}
            for d in result.days for model, parts in d.models.items() for part, f in parts.items()]

