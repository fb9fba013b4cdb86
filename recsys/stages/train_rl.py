"""Train stage of the RL recommenders: fit a policy on the window's logs; it is then scored,
estimated off-policy, gated and published like any catalogue model.

`train_rl` reads the window again with session ids and propensities
(`sql/queries/train/rl_extract_window.sql`; the MF extract does not carry them), builds
trajectories over the id maps of the night's `WindowDataset`, fits the actor-critic
(`recsys.models.rl.reinforce`), refuses a model with NaN parameters, and saves:

* `policy.pt`: the network's state dict (rebuild, inspection);
* `model.npz` + `model.json`: the serving projection as a `FactorModel`, user factors
  [state at the window's end, 1] and item factors [W_a, b_a] of the policy head, so
  `recsys.stages.score.score_shard` ranks items by policy logit (same scores artifact,
  same cold-start and seen-item rules as MF) and `recsys.stages.publish.publish_scores`
  publishes it unchanged.

The version is registered (kind `rl`) under the model name the catalogue gives it.
`learner="reinforce"` fits REINFORCE with top-K correction (`recsys.models.rl.reinforce`);
`learner="cql"` the conservative Q-learner (`recsys.models.rl.cql`), served greedy in Q.
With `init_from` naming a factor model, item embeddings start from that model's same-night
item factors when it is registered on the same dataset (projected to `embedding_dim` by
SVD), else at random.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from psycopg2 import sql

from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.db.engine import copy_out_to_file, load_sql, raw_connection, require_tables
from recsys.errors import EmptyWindowError, ModelFitError
from recsys.source import inspect_source
from recsys.interval import DataInterval
from recsys.models.factors import FactorModel, sha256_file
from recsys.models.rl import trajectories
from recsys.models.rl.cql import fit_cql
from recsys.models.rl.reinforce import fit_reinforce
from recsys.models.rl.training import serving_factors
from recsys.db.registry import get_run, model_version, register_trained

logger = logging.getLogger(__name__)

LEARNERS = ("reinforce", "cql")


@dataclass(frozen=True)
class RLTrainManifest:
    model_version: str
    artifact_path: str
    n_users: int
    n_items: int
    n_impressions: int
    n_sessions: int
    propensity_coverage: float
    mf_init: bool
    final_loss: float
    seconds: float


@dataclass(frozen=True)
class LoggedEvents:
    """Window events on the dataset's contiguous indices (see trajectories.build)."""

    user: np.ndarray
    item: np.ndarray
    event_code: np.ndarray
    ts: np.ndarray
    session_id: np.ndarray
    propensity: np.ndarray


def read_logged_events(settings: Settings, interval: DataInterval, dataset: WindowDataset) -> LoggedEvents:
    """The window's events with sessions and propensities, mapped onto `dataset`'s ids."""
    window = {"start": interval.train_window_start(settings.train_window_days), "end": interval.end,
              "impression_types": list(settings.impression_types), "click_types": list(settings.rl_click_types)}
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        # absent session_id / propensity read as NULL: sessions by day, the behaviour policy estimated
        source = inspect_source(cur, settings).relation()
        with copy_out_to_file(cur, sql.SQL(load_sql("train/rl_extract_window")).format(source=source), window,
                              Path(settings.artifact_dir) / interval.run_date.isoformat()) as csv:
            frame = pd.read_csv(csv, header=None,
                                names=["user_id", "item_id", "event_code", "ts", "session_id", "propensity"],
                                na_values=[""], keep_default_na=False,
                                dtype={"session_id": "float64", "propensity": "float64"})
    untyped = frame["event_code"].isna()
    if untyped.any():  # a type the extract did not meet (it refuses unknown ones): written since
        logger.warning("%d events have an event type that is neither built in nor declared (late arrivals); "
                       "ignored", int(untyped.sum()))
        frame = frame.loc[~untyped]
    unmapped = frame["user_id"].isna() | frame["item_id"].isna()
    if unmapped.any():  # text keys that arrived after the extract gave the window's keys their ids
        logger.warning("%d events have keys new since the extract (late arrivals); ignored", int(unmapped.sum()))
        frame = frame.loc[~unmapped]
    users, items = frame["user_id"].to_numpy(np.int64), frame["item_id"].to_numpy(np.int64)
    u = np.searchsorted(dataset.user_ids, users)
    i = np.searchsorted(dataset.item_ids, items)
    known = (u < len(dataset.user_ids)) & (i < len(dataset.item_ids))
    known[known] &= (dataset.user_ids[u[known]] == users[known]) & (dataset.item_ids[i[known]] == items[known])
    if not known.all():  # events that arrived after the extract: not in this night's id maps
        logger.warning("%d events are not in the night's dataset (late arrivals); ignored", int((~known).sum()))
    return LoggedEvents(u[known], i[known], frame["event_code"].to_numpy(np.int8)[known],
                        frame["ts"].to_numpy(np.float64)[known], frame["session_id"].to_numpy(np.float64)[known],
                        frame["propensity"].to_numpy(np.float64)[known])


def mf_item_init(settings: Settings, interval: DataInterval, dataset: WindowDataset, dim: int,
                 source_model: str) -> np.ndarray | None:
    """The night's `source_model` item factors projected on their top `dim` principal axes, unit
    scale; None if absent."""
    try:
        run = get_run(settings, model_version(source_model, interval.run_date))
    except LookupError:
        return None
    mf = FactorModel.load(Path(run.artifact_path), expected_sha256=run.artifact_sha256)
    if not np.array_equal(mf.item_ids, dataset.item_ids) or not np.isfinite(mf.item_factors).all():
        return None
    return project_item_factors(mf.item_factors, dim)


def project_item_factors(item_factors: np.ndarray, dim: int) -> np.ndarray:
    """(n_items, dim) the factors on their top `dim` principal axes, scaled to a standard deviation of 0.1."""
    centred = item_factors - item_factors.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    proj = u[:, :dim] * s[:dim]
    if proj.shape[1] < dim:
        proj = np.pad(proj, ((0, 0), (0, dim - proj.shape[1])))
    return (proj / max(float(proj.std()), 1e-8) * 0.1).astype(np.float32)


def build_trajectories(settings: Settings, interval: DataInterval, dataset: WindowDataset) -> trajectories.Trajectories:
    return _trajectories(settings, read_logged_events(settings, interval, dataset), len(dataset.item_ids),
                         interval.end.timestamp())


def _trajectories(settings: Settings, ev: LoggedEvents, n_items: int, end_ts: float) -> trajectories.Trajectories:
    cfg = settings.rl
    return trajectories.build(ev.user, ev.item, ev.event_code, ev.ts, ev.session_id, ev.propensity,
                              n_items, cfg.history_len, cfg.gamma, cfg.retention_weight,
                              cfg.return_horizon_days, end_ts, cfg.retention_credit,
                              cfg.consume_weight, cfg.abandon_penalty)


def _fit(settings: Settings, dataset: WindowDataset, traj: trajectories.Trajectories, learner: str,
         item_init: np.ndarray | None, end_ts: float) -> tuple[torch.nn.Module, Any, np.ndarray, np.ndarray]:
    """Fit the policy on `traj`; returns (network, fit record, user factors, item factors) of its
    serving projection, every user served from her positives before `end_ts`."""
    cfg = settings.rl
    if learner == "cql":
        net, fit = fit_cql(traj, cfg, item_init)
    else:
        net, fit = fit_reinforce(traj, cfg, settings.k, item_init)
    # the state every user is served from: their recent positives up to end_ts
    positives = dataset.positive_mask(settings.positive_types, before_ts=end_ts)
    hist = trajectories.user_histories(dataset.user_index, dataset.item_index, dataset.ts, positives,
                                       np.arange(len(dataset.user_ids)), np.full(len(dataset.user_ids), end_ts),
                                       cfg.history_len, len(dataset.item_ids))
    user_f, item_f = serving_factors(net, hist, head="q" if learner == "cql" else "policy")
    return net, fit, user_f, item_f


def fit_before(settings: Settings, interval: DataInterval, dataset: WindowDataset, before_ts: float,
               learner: str, mf_init: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(user factors, item factors) of the serving projection of a policy fitted on the window's logs
    before `before_ts` only (the evaluate stage's ranking hold-out: it never sees the hold-out day),
    its users served from their positives before it.

    Args:
        mf_init: the hold-out's training matrix when the served model's item embeddings started
            from ALS: they start from ALS fitted on it (the night's ALS saw the hold-out day).

    Raises:
        EmptyWindowError: no impression before `before_ts`.
    """
    from recsys.models.mf.als import fit_als

    ev = read_logged_events(settings, interval, dataset)
    keep = ev.ts < before_ts
    ev = LoggedEvents(*(getattr(ev, f.name)[keep] for f in dataclasses.fields(LoggedEvents)))
    traj = _trajectories(settings, ev, len(dataset.item_ids), before_ts)
    if traj.n == 0:
        raise EmptyWindowError(f"no impressions in {settings.source_table} before the hold-out day: "
                               "no RL policy to score on it")
    item_init = None
    if mf_init is not None:
        item_init = project_item_factors(fit_als(mf_init, settings.als)[1], settings.rl.embedding_dim)
    _, _, user_f, item_f = _fit(settings, dataset, traj, learner, item_init, before_ts)
    for name, array in (("user", user_f), ("item", item_f)):
        if not np.isfinite(array).all():
            raise ModelFitError(f"the hold-out {learner} policy's {name} factors hold NaN/inf values")
    return user_f, item_f


def train_rl(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str = "manual",
             *, model: str, learner: str = "reinforce", init_from: str | None = None) -> RLTrainManifest:
    """Fit REINFORCE with top-K correction (`learner="reinforce"`) or conservative Q-learning
    (`learner="cql"`) on the window's logs and register it as `model`.

    Raises:
        EmptyWindowError: the window holds no impression (nothing to learn a policy from).
        ModelFitError: the fit produced NaN parameters or states (nothing is saved).
    """
    if learner not in LEARNERS:
        raise ValueError(f"unknown RL learner {learner!r} for {model}; expected one of {LEARNERS}")
    model_name = model
    started = time.perf_counter()
    dataset = WindowDataset.load(Path(dataset_path))
    traj = build_trajectories(settings, interval, dataset)
    if traj.n == 0:
        raise EmptyWindowError(f"no impressions in {settings.source_table} for the training window: "
                               f"{model_name} needs logged impressions")
    cfg = settings.rl
    item_init = (mf_item_init(settings, interval, dataset, cfg.embedding_dim, init_from)
                 if cfg.init_from_mf and init_from else None)
    net, fit, user_f, item_f = _fit(settings, dataset, traj, learner, item_init, interval.end.timestamp())
    version = model_version(model_name, interval.run_date)
    directory = Path(settings.artifact_dir) / interval.run_date.isoformat() / model_name
    meta = {
        "model": model_name, "model_version": version, "config": dataclasses.asdict(cfg), "k": settings.k,
        "data_interval": [interval.start.isoformat(), interval.end.isoformat()],
        "train_window_days": settings.train_window_days, "mf_init": item_init is not None,
        "loss_history": fit.loss, "propensity_coverage": fit.propensity_coverage,
        "fit_diagnostics": fit.diagnostics,  # per epoch (REINFORCE): docs/rl-training.md says how to read them
        "stopped_early": fit.stopped_early, "epochs_kept": fit.epochs_kept,
    }
    model = FactorModel(user_f, item_f, dataset.user_ids, dataset.item_ids, meta)
    model.check_finite()  # before anything is written
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), directory / "policy.pt")
    meta["policy_sha256"] = sha256_file(directory / "policy.pt")
    npz, digest = model.save(directory)
    register_trained(settings, {
        "model": model_name, "model_kind": "rl", "model_version": version, "run_date": interval.run_date,
        "data_interval_start": interval.start, "data_interval_end": interval.end,
        "train_window_start": interval.train_window_start(settings.train_window_days),
        "n_interactions": traj.n, "n_users": int(len(np.unique(traj.session_user))), "n_items": len(dataset.item_ids),
        "params": {**dataclasses.asdict(cfg), "train_window_days": settings.train_window_days,
                   "mf_init": item_init is not None, "final_loss": fit.loss[-1] if fit.loss else None,
                   "fit_diagnostics": fit.diagnostics[-1] if fit.diagnostics else None,
                   "stopped_early": fit.stopped_early, "epochs_kept": fit.epochs_kept},
        "triggered_by": triggered_by, "artifact_path": str(npz), "artifact_sha256": digest,
    })
    manifest = RLTrainManifest(version, str(npz), len(dataset.user_ids), len(dataset.item_ids), traj.n,
                               len(traj.session_user), fit.propensity_coverage, item_init is not None,
                               fit.loss[-1] if fit.loss else float("nan"), time.perf_counter() - started)
    logger.info("trained %s on %d impressions (%d sessions, %.0f%% with propensities, MF init %s) in %.2fs; "
                "loss %s", version, traj.n, len(traj.session_user), 100 * fit.propensity_coverage,
                item_init is not None, manifest.seconds, json.dumps([round(x, 4) for x in fit.loss]))
    return manifest
