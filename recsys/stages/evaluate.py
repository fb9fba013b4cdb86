"""Evaluate stage: the model against the popularity and trending baselines on a temporal hold-out.

The hold-out is the last day of the training window (`RECSYS_HOLDOUT=last_day`),
each user's own last active day (`user_last_day`), or each user's last N
positive events (`RECSYS_HOLDOUT_LAST_N`). A model with the version's own
configuration (the values its search chose, read from the model file) is
fitted on the events before the hold-out, then it and the popularity and trending
baselines (`recsys.models.baselines`, fitted on the same events) rank items for the users who had positive events before and a new positive
item in the hold-out. With the window's-last-day hold-out the live model (the
champion, trained on data before the hold-out day) is scored on the same
users under subject `champion`, for the gate (`recsys.stages.gate`). Item-item models
(item-kNN, EASE) are refitted on the same events with the hyper-parameters their search
chose and scored as they are served (`recsys.stages.train_item_item.item_item_top`); they
have no item factors, so their lists' diversity is not measured. The hybrid is refitted on the
same events (the confidences its nightly fit saw) with its own encoder version and profile
weight and ranks the window's items like the others (an item first clicked on the hold-out day is in the window, and only the hybrid can
place it from its text). Every metric of
`recsys.metrics.ranking` goes to `eval_metrics` under the version; the headline
ones to `model_runs.metrics`; each hold-out user's accuracy metrics, for every subject,
to `holdout_users.npz` beside the model file (`recsys.holdout_users`), for the gate's
paired comparison and baseline floor.

The RL policies (`reinforce`, `cql`) get the same hold-out when it is the window's last day:
a policy of the version's configuration is fitted on the logs before that day
(`recsys.stages.train_rl.fit_before`; its item embeddings start from ALS fitted on the same
part when the version's did) and its serving projection is scored like a factor model, as
is the live RL version (trained on the window that ended where the hold-out day begins).

Where the log records impressions with sessions (MIND, the simulated log) and the hold-out is
the window's last day, the same subjects also score every shown slot of that day's
impressions of users with history (`recsys.models.pair_scores`; items without a positive
event before the day, or that the live model never saw, rank below every other), and MIND's
per-impression AUC, MRR and nDCG@5/10 (`recsys.metrics.impressions`), averaged over the
impressions with a click and a non-click, go to `eval_metrics` as metrics `impression_auc`,
`impression_mrr` (k 0) and `impression_ndcg` (k 5 and 10), with `n_impressions`.

Beside the plain recall and NDCG, every subject's propensity-weighted ones (`pw_recall`,
`pw_ndcg`, Yang et al. 2018: each held-out positive weighted by 1 / p_i, p_i ~ n_i^gamma with
n_i the item's users in the window, `RECSYS_PROPENSITY_GAMMA`; recsys.metrics.ranking) tell
a better model from a better imitation of a popularity-favouring logger.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

import scipy.sparse as sp

from recsys import holdout_users
from recsys.config import ALSConfig, BPRConfig, Settings
from recsys.dataset import ShownSlots, WindowDataset
from recsys.db.engine import load_sql, raw_connection
from recsys.db.registry import get_run, write_metrics
from recsys.errors import EmptyWindowError
from recsys.interval import DataInterval
from recsys.metrics.impressions import impression_metrics
from recsys.metrics.ranking import (Split, accuracy_per_user, item_propensities, propensity_weighted_per_user,
                                    ranking_metrics, temporal_split)
from recsys.models.baselines import as_factors
from recsys.models.item_item.model import ItemItemModel
from recsys.models.mf.als import fit_als
from recsys.models.mf.bpr import fit_bpr
from recsys.models.mf.warm import align_factors
from recsys.models.pair_scores import factor_pair_scores, item_item_pair_scores
from recsys.models.saved import SavedModel, load_model, pair_scores
from recsys.models.topk import TopK, top_k_factors, top_k_popular
from recsys.stages.train import mf_strengths
from recsys.stages.train_baseline import item_scores
from recsys.stages.train_item_item import ALGORITHMS as ITEM_ITEM_ALGORITHMS
from recsys.stages.train_item_item import fit_item_item, grid, item_item_top

logger = logging.getLogger(__name__)


RL_LEARNERS = ("reinforce", "cql")  # recsys.stages.train_rl.LEARNERS (not imported: it loads torch at once)
HOLDOUT_ALGORITHMS = ("als", "bpr", "popularity", "trending", "hybrid", *ITEM_ITEM_ALGORITHMS, *RL_LEARNERS)


def evaluate_holdout(settings: Settings, interval: DataInterval, dataset_path: str, version: str,
                     algorithm: str = "als") -> dict[str, float]:
    """Fit `algorithm` (HOLDOUT_ALGORITHMS) on the window minus its hold-out and score the hold-out
    beside the popularity and trending baselines (and the live model); returns the headline metrics."""
    if algorithm not in HOLDOUT_ALGORITHMS:
        raise ValueError(f"evaluate_holdout: algorithm must be one of {HOLDOUT_ALGORITHMS}, got {algorithm!r}")
    started = time.perf_counter()
    dataset = WindowDataset.load(Path(dataset_path))
    split = temporal_split(dataset, settings.positive_types, interval.end, settings.holdout_last_n,
                           holdout=settings.holdout)
    run = get_run(settings, version)
    holdout_path = holdout_users.path_for(run.artifact_path)
    if algorithm in RL_LEARNERS and (settings.holdout != "last_day" or settings.holdout_last_n > 0):
        # a policy is fitted on the logs before one time: each user's own hold-out has none
        holdout_path.unlink(missing_ok=True)
        logger.info("no ranking hold-out for %s: RL models are held out on the window's last day only "
                    "(RECSYS_HOLDOUT=last_day, RECSYS_HOLDOUT_LAST_N=0)", version)
        return {}
    if len(split.users) == 0:
        holdout_path.unlink(missing_ok=True)  # an earlier run's figures would not be this night's
        logger.info("no user with history has a new positive item in the hold-out: no metrics for %s", version)
        return {}
    meta_path = Path(run.artifact_path).with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    k = settings.k
    slots = holdout_slots(settings, dataset, split, interval)
    slot_scores: dict[str, np.ndarray] = {}  # subject -> (n_slots,) its score of each shown slot
    if algorithm in ITEM_ITEM_ALGORITHMS:
        # no item factors: the lists' diversity (a cosine of factors) is not measured for these
        item_factors = None
        similarity = _fit_item_item_on_split(settings, algorithm, meta, split)
        model_top = item_item_top(settings, similarity, split.train, split.users)
        if slots is not None:
            slot_scores["model"] = item_item_pair_scores(similarity, split.train, slots.user_index, slots.item_index)
    else:
        if algorithm in RL_LEARNERS:
            try:
                user_factors, item_factors = _fit_rl_on_split(settings, interval, algorithm, meta, dataset, split)
            except EmptyWindowError as exc:  # logs only on the hold-out day: no policy to hold out
                holdout_path.unlink(missing_ok=True)
                logger.info("no ranking hold-out for %s: %s", version, exc)
                return {}
        else:
            user_factors, item_factors = _fit_on_split(settings, algorithm, meta, dataset, split)
        model_top = top_k_factors(user_factors, item_factors, split.train, k, users=split.users,
                                  batch_users=settings.score_batch_users)
        if slots is not None:
            slot_scores["model"] = factor_pair_scores(user_factors, item_factors, slots.user_index, slots.item_index)
    propensity = item_propensities(np.diff(dataset.user_item_matrix(dataset.positive_mask(settings.positive_types))
                                           .tocsc().indptr), settings.propensity_gamma)
    figures = {"model": {**ranking_metrics(model_top, split.relevant, split.users, k, split.train, item_factors),
                         **_weighted(model_top, split, k, propensity)}}
    per_user = {"model": accuracy_per_user(model_top, split.relevant, split.users, k)}
    for baseline in holdout_users.BASELINE_SUBJECTS:  # what a team gets for free, beside every model
        scores = item_scores(baseline, dataset, split.train_mask, settings.trending_half_life_days)
        top = top_k_popular(scores, split.train, k, split.users)
        figures[baseline] = {**ranking_metrics(top, split.relevant, split.users, k, split.train, item_factors),
                             **_weighted(top, split, k, propensity)}
        per_user[baseline] = accuracy_per_user(top, split.relevant, split.users, k)
        if slots is not None:
            slot_scores[baseline] = scores[slots.item_index].astype(np.float64)
    if slots is not None:
        # items without a positive event before the hold-out: no model trained on it can rank them
        unknown = np.diff(split.train.tocsc().indptr)[slots.item_index] == 0
        for scores in slot_scores.values():
            scores[unknown] = -np.inf
    if settings.holdout_last_n <= 0 and settings.holdout == "last_day":  # the live model never saw that day
        live = _live_model(settings, run.model, version)
        if live is not None:
            top, live_item_factors = _champion_top(settings, live, dataset, split.train, split.users, k)
            figures["champion"] = {**ranking_metrics(top, split.relevant, split.users, k, split.train,
                                                     live_item_factors), **_weighted(top, split, k, propensity)}
            per_user["champion"] = accuracy_per_user(top, split.relevant, split.users, k)
            if slots is not None:
                slot_scores["champion"] = pair_scores(live[1], dataset.user_ids, dataset.item_ids, split.train,
                                                      slots.user_index, slots.item_index)
    # before eval_metrics: the gate reads both, and a re-run replaces both
    holdout_users.save(holdout_path, holdout_users.HoldoutUsers(version, k, dataset.user_ids[split.users], per_user))
    rows = [{"subject": subject, "metric": metric, "k": k, "value": value, "n_users": len(split.users)}
            for subject, metrics in figures.items() for metric, value in metrics.items()]
    summary = {f"{metric}@{k}" if subject == "model" else f"{subject}_{metric}@{k}": value
               for subject, metrics in figures.items() for metric, value in metrics.items()
               if metric in ("recall", "ndcg", "precision", "map", "hit_rate", "coverage", "pw_recall", "pw_ndcg")}
    summary["holdout_users"] = len(split.users)
    if slots is not None:
        impression_rows = _impression_rows(slots, slot_scores)
        rows += impression_rows
        for row in impression_rows:
            name = IMPRESSION_SUMMARY[(row["metric"], row["k"])]
            summary[name if row["subject"] == "model" else f"{row['subject']}_{name}"] = row["value"]
        if impression_rows:
            summary["impressions"] = impression_rows[0]["n_impressions"]
    write_metrics(settings, version, rows, summary)
    logger.info("evaluated %s on %d hold-out users in %.2fs: recall@%d %.4f (popularity %.4f)", version,
                len(split.users), time.perf_counter() - started, k, figures["model"]["recall"],
                figures["popularity"]["recall"])
    return summary


IMPRESSION_KS = (5, 10)  # MIND's nDCG cut-offs (Wu et al. 2020), whatever RECSYS_K is
# eval_metrics (metric, k) -> the model_runs.metrics key; k 0: the whole slate
IMPRESSION_SUMMARY = {("impression_auc", 0): "impression_auc", ("impression_mrr", 0): "impression_mrr",
                      **{("impression_ndcg", n): f"impression_ndcg@{n}" for n in IMPRESSION_KS}}


def _weighted(top: TopK, split: Split, k: int, propensity: np.ndarray) -> dict[str, float]:
    """The propensity-weighted recall and NDCG of `top` on the split's hold-out users (Yang et al. 2018)."""
    return {name: float(np.mean(values)) for name, values in
            propensity_weighted_per_user(top, split.relevant, split.users, k, propensity).items()}


def holdout_slots(settings: Settings, dataset: WindowDataset, split: Split,
                  interval: DataInterval) -> ShownSlots | None:
    """The hold-out day's shown slots of users with history, for the per-impression metrics; None
    (skipped) with a hold-out other than the window's last day, or no such slot. The extract has
    said why once a night (recsys.stages.extract); this says it at debug level."""
    if settings.holdout != "last_day" or settings.holdout_last_n > 0:
        logger.debug("per-impression metrics skipped: hold-out %s", settings.holdout)
        return None
    slots = dataset.shown_slots(settings.impression_types, settings.rl_click_types,
                                (interval.end - timedelta(days=1)).timestamp(), interval.end.timestamp())
    # a user with no positive event before the day has nothing for a model to rank from
    slots = slots.select(np.diff(split.train.indptr)[slots.user_index] > 0)
    if not len(slots):
        logger.debug("per-impression metrics skipped: no impression with a session of a user with history")
        return None
    return slots


def _impression_rows(slots: ShownSlots, slot_scores: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """eval_metrics rows of MIND's AUC, MRR and nDCG@5/10 per impression, averaged over the impressions
    with a click and a non-click (recsys.metrics.impressions); none when no impression has both."""
    codes = slots.impression_codes()
    user_of = np.zeros(int(codes.max(initial=-1)) + 1, np.int64)
    user_of[codes] = slots.user_index
    rows: list[dict[str, Any]] = []
    for subject, scores in slot_scores.items():
        figures = impression_metrics(codes, slots.clicked, scores, ks=IMPRESSION_KS)
        if not len(figures.impressions):
            continue
        means = figures.means()
        counts = {"n_users": int(len(np.unique(user_of[figures.impressions]))),
                  "n_impressions": int(len(figures.impressions))}
        rows += [{"subject": subject, "metric": "impression_auc", "k": 0, "value": means["auc"], **counts},
                 {"subject": subject, "metric": "impression_mrr", "k": 0, "value": means["mrr"], **counts},
                 *({"subject": subject, "metric": "impression_ndcg", "k": n, "value": means[f"ndcg@{n}"], **counts}
                   for n in IMPRESSION_KS)]
    if rows:
        logger.info("per-impression metrics on %d impressions (%d shown slots): %s", rows[0]["n_impressions"],
                    len(slots), ", ".join(f"{r['subject']} AUC {r['value']:.4f}" for r in rows
                                          if r["metric"] == "impression_auc"))
    return rows


def _fit_on_split(settings: Settings, algorithm: str, meta: dict, dataset: WindowDataset,
                  split: Split) -> tuple[np.ndarray, np.ndarray]:
    """User and item factors of `algorithm` fitted on the split's training part, with the
    version's own configuration (the values its search chose, read from the model file)."""
    if algorithm == "bpr":
        config = dataclasses.replace(settings.bpr, **_known(BPRConfig, meta.get("config", {})))
        return fit_bpr(split.train, config)
    if algorithm == "hybrid":
        from recsys.stages.embed import load_vectors
        from recsys.stages.train_hybrid import hybrid_split_factors, vectors_for

        # the version's own encoder space and profile weight; ranked over the window's items, as the others
        ids, vectors = load_vectors(settings, meta["encoder_version"], item_ids=dataset.item_ids)
        window = vectors_for(dataset.item_ids, ids, vectors, vectors.shape[1] if len(ids) else 1)
        # its MF part sees the confidence the nightly fit saw (weights, values, decay), as mf_als's refit does
        return hybrid_split_factors(settings, dataset, split, window, float(meta.get("profile_weight", 0.0)),
                                    matrix=_als_train(settings, meta, dataset, split))
    if algorithm == "als" and meta.get("params", {}).get("backend") == "spark":
        held = _spark_holdout_factors(settings, meta, dataset)
        if held is not None:
            return held
    if algorithm == "als":
        config = dataclasses.replace(settings.als, **_known(ALSConfig, meta.get("config", {})))
        # the nightly fit may have been a short warm-started one: the hold-out model starts cold
        config = dataclasses.replace(config, iterations=max(config.iterations, settings.als.iterations))
        return fit_als(_als_train(settings, meta, dataset, split), config)
    half_life = meta.get("params", {}).get("half_life_days", settings.trending_half_life_days)
    return as_factors(item_scores(algorithm, dataset, split.train_mask, half_life), len(dataset.user_ids))


def _spark_holdout_factors(settings: Settings, meta: dict, dataset: WindowDataset) -> tuple | None:
    """The hold-out fit the version's Spark job made on the days before the hold-out day, so the gate
    scores the Spark model and not a torch refit of it; None (then torch refits it, at the same values)
    when the hold-out is not the window's last day, which the job cannot know."""
    from recsys.spark.backend import load_factors

    output = Path(meta.get("spark_output", ""))
    if not (output / "holdout_user_factors").exists():
        logger.warning("no Spark hold-out fit in %s (RECSYS_HOLDOUT=%s, RECSYS_HOLDOUT_LAST_N=%d): the hold-out "
                       "model is a torch refit at the same values", output, settings.holdout, settings.holdout_last_n)
        return None
    return load_factors(output, dataset, prefix="holdout_")


def _als_train(settings: Settings, meta: dict, dataset: WindowDataset, split: Split) -> sp.csr_matrix:
    """The split's training part as the version's ALS saw its window: each pair's confidence (type weights,
    values, the time decay with the version's recorded half-life, ages at its data interval's end), so the
    hold-out scores the model that was trained and not a count-fed one; the counts when the confidence is
    the count and nothing decays."""
    params = meta.get("params", {})
    half_life = float(params.get("decay_half_life_days", settings.mf_decay_half_life_days))
    interval = meta.get("data_interval")
    if settings.mf_confidence == "count" and (half_life <= 0 or not interval):
        return split.train
    as_of = datetime.fromisoformat(interval[1]) if interval else None
    positives = dataset.positive_mask(settings.positive_types)
    strengths = mf_strengths(settings, dataset, positives, as_of, half_life if as_of is not None else 0.0)
    return dataset.user_item_matrix(split.train_mask, strengths)


def _fit_rl_on_split(settings: Settings, interval: DataInterval, learner: str, meta: dict, dataset: WindowDataset,
                     split: Split) -> tuple[np.ndarray, np.ndarray]:
    """The serving projection of an RL policy fitted on the window's logs before the hold-out day
    (recsys.stages.train_rl.fit_before), MF-initialised on the split's training part when the
    version was (its model file's `mf_init`)."""
    from recsys.stages.train_rl import fit_before  # torch and the RL models: only for RL's hold-out

    return fit_before(settings, interval, dataset, (interval.end - timedelta(days=1)).timestamp(), learner,
                      split.train if meta.get("mf_init") else None)


def _fit_item_item_on_split(settings: Settings, algorithm: str, meta: dict,
                            split: Split) -> sp.csr_matrix | np.ndarray:
    """The item-item matrix of `algorithm` fitted on the split's training part with the
    version's own hyper-parameters (the point its search chose, read from the model file)."""
    chosen = meta.get("params", {})
    point = {key: chosen.get(key, value) for key, value in grid(settings, algorithm)[0].items()}
    return fit_item_item(settings, algorithm, split.train, point)


def _known(cls: type, values: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in values.items() if key in names}


def _live_model(settings: Settings, model: str, version: str) -> tuple[str, SavedModel] | None:
    """(version, loaded model) of the live `model` other than `version`; None without one (or its file)."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("evaluate/champion_source"), {"model": model, "model_version": version})
        row = cur.fetchone()
    if row is None or not Path(row[2]).exists():
        return None
    return row[0], load_model(Path(row[2]), expected_sha256=row[3])


def _champion_top(settings: Settings, live: tuple[str, SavedModel], dataset: WindowDataset, train: sp.csr_matrix,
                  users: np.ndarray, k: int) -> tuple[TopK, np.ndarray | None]:
    """Top-K of the live model for `users` on tonight's id maps, and its item factors (None for an
    item-item model).

    Items the live model never saw are excluded from its lists (masked like
    seen items); users a factor model never saw get all-zero scores (an item-item
    model scores every user from her history).
    """
    label, model = live
    if isinstance(model, ItemItemModel):
        similarity, known = model.aligned(dataset.item_ids)
        top = item_item_top(settings, similarity, train, users, exclude_items=np.flatnonzero(~known))
        logger.info("scored the champion %s on %d hold-out users", label, len(users))
        return top, None
    user_factors, _ = align_factors(model.user_ids, model.user_factors, dataset.user_ids)
    item_factors, _ = align_factors(model.item_ids, model.item_factors, dataset.item_ids)
    unknown_items = np.flatnonzero(np.isnan(item_factors[:, 0]))
    user_factors, item_factors = np.nan_to_num(user_factors), np.nan_to_num(item_factors)
    mask = train
    if len(unknown_items):
        cols = np.tile(unknown_items, len(users))
        rows = np.repeat(users, len(unknown_items))
        extra = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=train.shape)
        mask = (train + extra).tocsr()
    top = top_k_factors(user_factors, item_factors, mask, k, users=users, batch_users=settings.score_batch_users)
    logger.info("scored the champion %s on %d hold-out users", label, len(users))
    return top, item_factors
