"""One settings object, read from the environment first.

Every knob has a default that works for the demo; `Settings.from_env()` reads the
`RECSYS_*` variables declared in `recsys.settings_table` (docs/settings.md lists
them) and `dataclasses.replace` overrides single fields (the DAG does that with its
run parameters, the CLI with its flags).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Mapping

from recsys.errors import ConfigurationError
from recsys.event_types import (BUILT_IN_ROLES, CONFIDENCE_MODES, DEFAULT_EVENT_TYPES, EventType, vocabulary,
                                with_declared)
from recsys.settings_table import FIELD_VARIABLES, TABLE, UNSET

logger = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
# `gate_metric` value that gates on the off-policy estimate of the D1 return rate
# instead of a hold-out ranking metric (see Settings and recsys.stages.gate).
DR_GATE_METRIC = "dr_return_lcb"
# `approval` values: which publishes wait for a person's approval (recsys.stages.approval)
APPROVAL_MODES = ("off", "first", "forced", "first_and_forced")
# the paired variant: the lower bound of the DR estimate of (challenger - live version)'s
# return rate, both evaluated on the same logged sessions and bootstrap resamples
DR_DIFF_GATE_METRIC = "dr_return_diff_lcb"
DR_GATE_METRICS = (DR_GATE_METRIC, DR_DIFF_GATE_METRIC)

# How a session's slot weights w_j = pi_incl(a_j) / mu_incl(a_j) make its weight for a
# session-level reward (the return), over its n slots:
# * "pseudo_inverse": sum_j w_j - (n - 1), the pseudo-inverse estimator of Swaminathan et
#   al. (NeurIPS 2017). Unbiased when the reward is additive over the slate's items and
#   the slots are drawn independently (nearly so for slates without repeats); the weights
#   can be negative, and their variance grows with n.
# * "mean": (1/n) sum_j w_j. Never negative and of low variance, but biased towards the
#   logging policy's value: for an additive reward its expectation is about
#   (1/n) V(target) + ((n - 1)/n) V(logging), since each slot's weight multiplies the
#   other slots' rewards too. With uniform 4-item slates (tests/metrics/test_off_policy.py) it gave
#   0.58-0.60 for a policy worth 0.80-0.83.
SESSION_WEIGHTS = ("mean", "pseudo_inverse")  # recsys.metrics.off_policy


@dataclass(frozen=True)
class ALSConfig:
    """Hyper-parameters of implicit ALS (Hu, Koren, Volinsky 2008; Rendle et al. 2022).

    An observed pair weighs c_ui = 1 + alpha * r_ui, an unobserved one `unobserved_weight`
    (alpha_0; Hu et al.'s 1). User u's L2 weight is regularization * (n_u + alpha_0 *
    n_items) ** reg_exponent, item i's regularization * (n_i + alpha_0 * n_users) **
    reg_exponent, n_u and n_i their observed pairs (Rendle et al.'s frequency-scaled
    regularisation; 0 = the same weight for every row, Hu et al.'s).
    """

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0
    unobserved_weight: float = 1.0
    reg_exponent: float = 0.0
    iterations: int = 15
    cg_steps: int = 3
    seed: int = 42
    num_threads: int = 0  # torch threads; 0 = the CPUs given to the task (sched_getaffinity)
    warm_iterations: int = 5  # iterations when starting from the previous published model


@dataclass(frozen=True)
class BPRConfig:
    """Hyper-parameters of BPR (Rendle et al. 2009), the second MF model.

    `learning_rate` is the step size at the start of the fit; with `lr_schedule="linear"`
    it decays to 0 over the `iterations` epochs ("constant" keeps it, as `implicit` does).
    The defaults, 0.03 decaying over 50 epochs, give every interaction three quarters
    of the summed step size of `implicit`'s defaults (0.01 x 100 epochs); see
    recsys.models.mf.bpr and docs/benchmarks.md for the choice.
    """

    factors: int = 64
    learning_rate: float = 0.03
    regularization: float = 0.01
    iterations: int = 50
    batch_size: int = 2048  # triples per step; small enough that a batch's rows stay in cache
    lr_schedule: str = "linear"  # 'linear' (decay to 0 over the fit) or 'constant'
    seed: int = 42
    num_threads: int = 0  # CPUs of the fit, 0 = the task's; with 2+ the triples are drawn on a second thread
    warm_iterations: int = 10  # epochs when starting from the previous model (the schedule restarts)


@dataclass(frozen=True)
class SearchConfig:
    """The nightly hyper-parameter search of ALS on a validation split.

    The split is the last `validation_days` of the training window before the
    hold-out (never the hold-out itself); every point is fitted with `iterations`
    iterations and ranked by NDCG@K (then recall@K) on it.

    Coarse to fine (recsys.stages.train.search_als): every point of `alphas` x
    `regularizations` x `reg_exponents` x `unobserved_weights` is fitted with the first
    of `factors`, then the `refine_top` best of them with each other factor count;
    `refine_top` 0 fits every point with every factor count (the whole grid). A
    regularisation of the grid is the typical row's L2 weight: with a `reg_exponent`
    nu > 0 the fitted `regularization` is it divided by s ** nu, s the geometric mean
    of the users' and the items' mean (n + alpha_0 * n_other), so one list of values
    spans the same range of weights whatever nu (`ALSConfig` has the formula).
    """

    enabled: bool = True
    factors: tuple[int, ...] = (16, 64, 128)
    alphas: tuple[float, ...] = (1.0, 10.0, 40.0)
    regularizations: tuple[float, ...] = (1.0, 10.0, 100.0)
    reg_exponents: tuple[float, ...] = (0.0, 1.0)
    unobserved_weights: tuple[float, ...] = (1.0, 0.1)
    refine_top: int = 2
    iterations: int = 6
    validation_days: int = 1

    def __post_init__(self) -> None:
        checks = (("factors", "RECSYS_ALS_SEARCH_FACTORS", self.factors, lambda v: v >= 1),
                  ("alphas", "RECSYS_ALS_SEARCH_ALPHAS", self.alphas, lambda v: 0.0 <= v < float("inf")),
                  ("regularizations", "RECSYS_ALS_SEARCH_REGULARIZATIONS", self.regularizations,
                   lambda v: 0.0 < v < float("inf")),
                  ("reg_exponents", "RECSYS_ALS_SEARCH_REG_EXPONENTS", self.reg_exponents,
                   lambda v: 0.0 <= v <= 2.0),
                  ("unobserved_weights", "RECSYS_ALS_SEARCH_UNOBSERVED_WEIGHTS", self.unobserved_weights,
                   lambda v: 0.0 <= v < float("inf")))
        for name, variable, values, ok in checks:
            if not values or not all(ok(v) for v in values):
                raise ValueError(f"SearchConfig.{name} ({variable}) has a value out of range or is empty: "
                                 f"{values!r}")
        if self.refine_top < 0:
            raise ValueError(f"SearchConfig.refine_top (RECSYS_ALS_SEARCH_REFINE_TOP) must be >= 0, "
                             f"got {self.refine_top!r}")

    @property
    def coarse_points(self) -> int:
        """Points of the grid of everything but the factor count."""
        return (len(self.alphas) * len(self.regularizations) * len(self.reg_exponents)
                * len(self.unobserved_weights))


@dataclass(frozen=True)
class ItemKNNConfig:
    """The item-kNN model (`recsys.models.item_item.knn`) and its nightly search.

    Every pair of `neighbours` x `weightings` is fitted on the validation split (the day
    before the hold-out, as ALS's search) and ranked by recall@K, then NDCG@K; with one
    pair, or no validation user, the first pair is used as is. `shrinkage` (cosine only),
    `bm25_k1` and `bm25_b` are fixed.
    """

    neighbours: tuple[int, ...] = (20, 50, 100, 200)
    weightings: tuple[str, ...] = ("cosine", "bm25")
    shrinkage: float = 0.0
    bm25_k1: float = 1.2
    bm25_b: float = 0.75

    def __post_init__(self) -> None:
        if not self.neighbours or min(self.neighbours) < 1:
            raise ValueError(f"ItemKNNConfig.neighbours (RECSYS_ITEMKNN_NEIGHBOURS) must be integers >= 1, "
                             f"got {self.neighbours!r}")
        if not self.weightings or any(w not in ("cosine", "bm25") for w in self.weightings):
            raise ValueError("ItemKNNConfig.weightings (RECSYS_ITEMKNN_WEIGHTINGS) must be 'cosine' and/or 'bm25', "
                             f"got {self.weightings!r}")
        if not 0.0 <= self.shrinkage < float("inf") or not 0.0 <= self.bm25_k1 < float("inf") \
                or not 0.0 <= self.bm25_b <= 1.0:
            raise ValueError("ItemKNNConfig needs shrinkage >= 0 (RECSYS_ITEMKNN_SHRINKAGE), K1 >= 0 "
                             "(RECSYS_ITEMKNN_BM25_K1) and 0 <= B <= 1 (RECSYS_ITEMKNN_BM25_B), got "
                             f"{self.shrinkage!r}, {self.bm25_k1!r}, {self.bm25_b!r}")


@dataclass(frozen=True)
class EASEConfig:
    """EASE (`recsys.models.item_item.ease`): its L2 weights and the memory it may take.

    Every value of `lambdas` is fitted on the validation split and the best (recall@K, then
    NDCG@K) is used; one value is used as is. A catalogue whose n_items^2 x 8 bytes x 2
    (the Gram matrix inverted in place and the float32 weights) exceeds `max_memory_mb`
    MiB is refused with a ConfigurationError before anything is allocated.
    """

    lambdas: tuple[float, ...] = (100.0, 300.0, 1000.0)
    max_memory_mb: int = 4096

    def __post_init__(self) -> None:
        if not self.lambdas or not all(0.0 < value < float("inf") for value in self.lambdas):
            raise ValueError(f"EASEConfig.lambdas (RECSYS_EASE_LAMBDAS) must be finite numbers > 0, "
                             f"got {self.lambdas!r}")
        if self.max_memory_mb <= 0:
            raise ValueError(f"EASEConfig.max_memory_mb (RECSYS_EASE_MAX_MEMORY_MB) must be > 0, "
                             f"got {self.max_memory_mb!r}")


@dataclass(frozen=True)
class ContentConfig:
    """Item content vectors (`recsys.content`) and the `hybrid` model (`recsys.models.hybrid`).

    `encoder`: `tfidf` (scikit-learn TF-IDF + truncated SVD to `dim` components, fitted on
    the catalogue; the default, nothing to download) or `sentence-transformers:<model>`,
    where <model> is a local model folder or an installed package that ships one (its
    `get_model_path()`). The TF-IDF space is refitted (a new encoder version, which
    re-embeds every item) when the catalogue items outside the stored fit exceed
    `refit_share` of the catalogue; below it new and changed items are transformed with the
    stored fit. `ridge`: L2 weight of the content -> MF factor map. `profile_weights`: the
    weights of the user's content profile (a cosine) beside the MF score that the search
    tries on the validation day (the first on a tie); `half_life_days`: the profile's recency weighting.
    """

    encoder: str = "tfidf"
    dim: int = 64
    refit_share: float = 0.1
    ridge: float = 1.0
    # the first is kept when the validation day cannot tell them apart (a tie, as on sparse news logs)
    profile_weights: tuple[float, ...] = (0.3, 0.0, 0.1, 1.0)
    half_life_days: float = 3.0

    def __post_init__(self) -> None:
        name, _, target = self.encoder.partition(":")
        if name not in ("tfidf", "sentence-transformers") or (name == "tfidf") == bool(target.strip()):
            raise ConfigurationError(f"RECSYS_CONTENT_ENCODER must be 'tfidf' or 'sentence-transformers:<local model "
                                     f"path or installed package>', got {self.encoder!r}")
        if self.dim < 1:
            raise ValueError(f"ContentConfig.dim (RECSYS_CONTENT_DIM) must be >= 1, got {self.dim!r}")
        if not 0.0 <= self.refit_share <= 1.0:
            raise ValueError(f"ContentConfig.refit_share (RECSYS_CONTENT_REFIT_SHARE) must be in [0, 1], "
                             f"got {self.refit_share!r}")
        if not 0.0 < self.ridge < float("inf"):
            raise ValueError(f"ContentConfig.ridge (RECSYS_HYBRID_RIDGE) must be finite and > 0, got {self.ridge!r}")
        if not self.profile_weights or not all(0.0 <= w < float("inf") for w in self.profile_weights):
            raise ValueError("ContentConfig.profile_weights (RECSYS_HYBRID_PROFILE_WEIGHTS) must be finite numbers "
                             f">= 0, got {self.profile_weights!r}")
        if not 0.0 < self.half_life_days < float("inf"):
            raise ValueError(f"ContentConfig.half_life_days (RECSYS_HYBRID_HALF_LIFE_DAYS) must be > 0, "
                             f"got {self.half_life_days!r}")


@dataclass(frozen=True)
class RLConfig:
    """Hyper-parameters of the RL recommenders (REINFORCE and CQL) and their reward.

    REINFORCE with top-K off-policy correction (Chen et al., WSDM 2019) and discrete
    conservative Q-learning (Kumar et al., NeurIPS 2020) learn from the same reward.

    Reward of an impression in session t (REINFORCE's R): click + consume_weight *
    consumed - abandon_penalty * abandoned + credit * (retention_weight * returned_t +
    gamma * G_{t+1}), where consumed is 1 when the user consumed the item in the session,
    abandoned is 1 when the user clicked it but did not consume it, returned_t is 1 when
    the user starts another session within `return_horizon_days` calendar days after
    the session's day, G_{t+1} is the discounted per-session value of the user's next
    session and credit is 1 for the impressions `retention_credit` names ('clicked',
    'consumed' or 'session': all), else 0 (see recsys.models.rl.trajectories).
    `consume_weight` (RECSYS_RL_CONSUME_WEIGHT, >= 0) is the value of a consumption
    relative to a click: 0 rewards clicks alone; w > 0 makes a consumed click worth
    1 + w, so items users finish outrank items they only click. `abandon_penalty`
    (RECSYS_RL_ABANDON_PENALTY, >= 0) makes a click the user walked away from cost
    something: with consume_weight w and penalty b, a click is worth (1 - b) + (w + b) x
    P(consume | click), negative where the item is consumed less often than (b - 1) /
    (w + b); the defaults (4, 6) put that line at one consumption in two clicks, and
    0 gives the earlier reward (see docs/closed-loop.md for how the defaults were
    chosen). CQL's immediate reward has the same terms (recsys.models.rl.cql).

    The state encoder (`recsys.models.rl.encoders`) is a GRU by default or, with
    `encoder="sasrec"`, SASRec-style causal self-attention, whose depth, heads and
    dropout the `attention_*` and `dropout` fields set (the GRU ignores them).
    """

    embedding_dim: int = 32
    hidden_dim: int = 32
    history_len: int = 10
    encoder: str = "gru"  # 'gru' or 'sasrec' (RECSYS_RL_ENCODER)
    attention_heads: int = 2  # sasrec only; must divide hidden_dim
    attention_blocks: int = 2  # sasrec only
    dropout: float = 0.1  # sasrec only; off at serving time (eval mode)
    epochs: int = 6
    batch_sessions: int = 256
    # REINFORCE: sessions drawn per epoch, clicked ones first, reweighted (0 = all; training.epoch_sessions).
    # Bounds a night's fit: the demo and the closed loop (< 100,000 sessions) train on all of theirs.
    sessions_per_epoch: int = 100_000
    learning_rate: float = 0.005
    gamma: float = 0.9
    retention_weight: float = 1.0
    return_horizon_days: int = 1
    retention_credit: str = "consumed"  # who gets a session's retention credit: 'clicked', 'consumed', 'session' (all)
    consume_weight: float = 4.0  # reward of a consumption on top of its click's 1 (RECSYS_RL_CONSUME_WEIGHT)
    abandon_penalty: float = 6.0  # cost of a click the user did not consume (RECSYS_RL_ABANDON_PENALTY)
    weight_cap: float = 10.0  # importance weights pi / beta are clipped here
    # REINFORCE stops early, keeping the last healthy epoch, when an epoch's effective sample
    # size of pi / beta falls below this share of its impressions, or its policy entropy below
    # this share of the uniform policy's (a collapse onto a few items); 0 turns a rule off
    stop_min_ess_share: float = 0.02
    stop_min_entropy_share: float = 0.1
    # published RL lists hold at least this many distinct items: a collapsed policy's lists are
    # spread (recsys.models.coverage_floor); the gate's collapse line by default; 0 = off
    min_distinct_items: int = 20
    value_loss_weight: float = 0.5
    behaviour_loss_weight: float = 1.0
    cql_alpha: float = 1.0  # conservative penalty of CQL
    init_from_mf: bool = True  # item embeddings from the same night's ALS item factors, when there
    seed: int = 42
    num_threads: int = 1  # torch threads of the fit; 0 = 1 too (the networks are small)

    def __post_init__(self) -> None:
        # fail when the settings are read, not hours later when the nightly fit starts
        if self.sessions_per_epoch < 0:
            raise ValueError("RLConfig.sessions_per_epoch (RECSYS_RL_SESSIONS_PER_EPOCH) must be >= 0 (0 = every "
                             f"session), got {self.sessions_per_epoch!r}")
        for name, env in (("stop_min_ess_share", "RECSYS_RL_STOP_MIN_ESS_SHARE"),
                          ("stop_min_entropy_share", "RECSYS_RL_STOP_MIN_ENTROPY_SHARE")):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"RLConfig.{name} ({env}) must be in [0, 1) (0 = off), got {getattr(self, name)!r}")
        if self.min_distinct_items < 0:
            raise ValueError("RLConfig.min_distinct_items (RECSYS_RL_MIN_DISTINCT_ITEMS) must be >= 0 (0 = off), "
                             f"got {self.min_distinct_items!r}")
        if self.encoder not in ("gru", "sasrec"):
            raise ValueError(f"RLConfig.encoder (RECSYS_RL_ENCODER) must be 'gru' or 'sasrec', got {self.encoder!r}")
        if self.retention_credit not in ("clicked", "consumed", "session"):
            raise ValueError("RLConfig.retention_credit (RECSYS_RL_RETENTION_CREDIT) must be 'clicked', 'consumed' "
                             f"or 'session', got {self.retention_credit!r}")
        if not 0.0 <= self.consume_weight < float("inf"):  # NaN fails the comparison too
            raise ValueError("RLConfig.consume_weight (RECSYS_RL_CONSUME_WEIGHT) must be finite and >= 0, "
                             f"got {self.consume_weight!r}")
        if not 0.0 <= self.abandon_penalty < float("inf"):
            raise ValueError("RLConfig.abandon_penalty (RECSYS_RL_ABANDON_PENALTY) must be finite and >= 0, "
                             f"got {self.abandon_penalty!r}")


@dataclass(frozen=True)
class OPEConfig:
    """Off-policy evaluation: weight clipping, bootstrap size and the target policies' exploration."""

    weight_cap: float | None = 20.0
    n_bootstrap: int = 200
    explore: float = 0.1  # per-slot exploration assumed for a candidate list policy
    seed: int = 42
    session_weight: str = "mean"  # a session's weight for the return rate: SESSION_WEIGHTS

    def __post_init__(self) -> None:
        if self.session_weight not in SESSION_WEIGHTS:
            raise ValueError(f"OPEConfig.session_weight (RECSYS_OPE_SESSION_WEIGHT) must be one of {SESSION_WEIGHTS}, "
                             f"got {self.session_weight!r}")


@dataclass(frozen=True)
class AlertConfig:
    """Where alerts go (recsys.alerts, sent by recsys.airflow_support through Airflow's notifiers).

    Each channel is an Airflow connection; a channel whose connection is not defined sends
    nothing (and the task log says no channel is set up), and "" turns it off.
    """

    smtp_conn_id: str = "recsys_smtp"  # an `smtp` connection: mail to `email_to`
    slack_conn_id: str = "recsys_slack"  # a `slackwebhook` connection: the webhook's URL or token
    email_to: str = ""  # recipients of the mail, comma-separated; none: no mail even with the connection
    email_from: str = ""  # sender; "": the SMTP connection's `from_email` extra


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the nightly data-health checks (recsys.stages.health).

    A check outside its bounds puts the night's publishes on hold (status `held`), or
    only warns (`warned`) with `warn_only`. A bound of 0 (a minimum) or `inf` (a
    maximum) turns that side of a check off.
    """

    history_days: int = 7  # the trailing days whose median is each check's baseline
    new_lookback_days: int = 28  # a user or item is new on a day without events in this many days before it
    min_volume_ratio: float = 0.2  # events of the day / trailing median below this: held
    max_volume_ratio: float = 5.0  # ... or above this
    max_ctr_change: float = 0.5  # click-through below median x (1 - this) or above median / (1 - this): held
    max_new_share_rise: float = 0.5  # share of events from new users (items) above the median + this: held
    max_tag_drop: float = 0.5  # share of impressions with a propensity (model version) below median x (1 - this)
    min_compliance: float = 0.5  # share of tagged impressions whose item is in the version's list for the user
    warn_only: bool = False  # failed checks warn; the night publishes

    def __post_init__(self) -> None:
        if self.history_days < 1 or self.new_lookback_days < 1:
            raise ValueError("HealthConfig: RECSYS_HEALTH_HISTORY_DAYS and RECSYS_HEALTH_NEW_LOOKBACK_DAYS must be "
                             f">= 1, got {self.history_days} and {self.new_lookback_days}")
        for name, variable in (("max_ctr_change", "RECSYS_HEALTH_MAX_CTR_CHANGE"),
                               ("max_tag_drop", "RECSYS_HEALTH_MAX_TAG_DROP")):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"HealthConfig.{name} ({variable}) must be in [0, 1), got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Settings:
    """Configuration of one pipeline run.

    Attributes:
        database_url: SQLAlchemy URL of the data database (not Airflow's metadata DB).
        schema: PostgreSQL schema holding recsys tables.
        source_table: table or view the extractor reads interactions from
            (unqualified names resolve inside `schema`).
        artifact_dir: where datasets and model files of each run are kept.
        k: length of each published recommendation list.
        train_window_days: days of history, ending at the interval end, that train a model.
        retention_days: the N of the N-day retention cells computed each night.
        retention_timezone: IANA time zone whose calendar days retention,
            engagement and per-model retention count in.
        active_event_types: event types that count as a user being active (the declared types
            of role positive count too: `active_types`).
        retention_start_date: the first day retention, engagement and per-model retention count
            (None: the whole log); events before it are not read by the refresh, so a stray
            far-past event makes no cohort.
        positive_event_types: event types that count as implicit positive feedback (the
            declared types of role positive too: `positive_types`).
        event_types: the event types a log may hold, each with a role and a weight
            (`RECSYS_EVENT_TYPES`, recsys.event_types): the three built in, then the declared
            ones. Any tuple of EventType is completed to that vocabulary.
        mf_confidence: what the MF input of a (user, item) pair is (`RECSYS_MF_CONFIDENCE`,
            CONFIDENCE_MODES): `count` of its positive events (the default), the sum of their
            types' `weight`s, or the sum of their `value`s (NULL: the type's weight).
        mf_decay_half_life_days: > 0: each positive event's share of its pair's MF input is
            multiplied by 2 ** (-age / half-life), its age in days at the window's end (the
            as-of date, so a backfill fits the same model whenever it runs); 0: no decay.
        mf_backend: where mf_als is fitted (`RECSYS_MF_BACKEND`): `torch` on this worker, or
            `spark` through spark-submit (recsys.spark; docs/scaling.md).
        spark_master: the master `recsys run` gives spark-submit (the DAG reads its
            `spark_default` connection instead).
        keep_versions: published versions of each model kept as history.
        serving_alias: the model name (`RECSYS_SERVING_ALIAS`) whose live lists are those of the
            candidate whose live lists did best on the night's hold-out (recsys.stages.choose);
            "" turns the alias off.
        gate_metric: what the champion/challenger gate compares (`RECSYS_GATE_METRIC`). A hold-out
            ranking metric at K (`ndcg`, the default, `recall`, ...), for MF; RL models pass that
            gate (no ranking hold-out: their read-out is the A/B arm and OPE). Or `dr_return_lcb`
            (DR_GATE_METRIC), for every model: the lower bound of the 95% bootstrap interval of
            the challenger's doubly robust estimate of its D1 return rate on the night's logged
            day (D-2) against the live version's DR point estimate on the same day, from the
            lists it serves; accepted when lcb >= champion - gate_tolerance. A day without
            logged impressions with propensities gives no estimate: the fresher model is published.
            Or `dr_return_diff_lcb` (DR_DIFF_GATE_METRIC): the lower bound of the paired DR
            estimate of challenger - live on the same sessions and resamples, accepted when
            >= -gate_tolerance (recsys.stages.gate).
        gate_tolerance: the DR gates' tolerance (`RECSYS_GATE_TOLERANCE`): how much lower (absolute, in
            return rate) than the live model a new model's lower bound may be and still go live. The
            ranking gate no longer reads it (it did before issue #18, the safe gate): it reads
            `gate_relative_tolerance`.
        gate_relative_tolerance: the ranking gate's tolerance, relative to the live model's hold-out
            metric (`RECSYS_GATE_RELATIVE_TOLERANCE`, 0.05 = 5%): the challenger goes live when the
            lower bound of the paired bootstrap interval of (challenger - champion) over the hold-out
            users is >= -gate_relative_tolerance * champion.
        gate_min_users: hold-out users below which the ranking metric decides nothing
            (`RECSYS_GATE_MIN_USERS`): the live model stays, or the first model goes live, with that
            reason recorded. 0 = any number decides.
        gate_min_distinct_items: an RL model's lists that hold fewer distinct items than this,
            all users together, are a collapse (a few items for everyone) and are not published
            (`RECSYS_GATE_MIN_DISTINCT_ITEMS`; 0 = no such rule).
        gate_bootstrap_samples: replicates of the ranking gate's paired bootstrap
            (`RECSYS_GATE_BOOTSTRAP_SAMPLES`), seeded with `gate_seed` so a re-run decides the same.
        gate_baseline_floor: no learned model goes live while its hold-out metric is below the best
            baseline's on the same users (`RECSYS_GATE_BASELINE_FLOOR`): the baselines scored beside it
            and the night's models of kind `baseline`. `force_publish` overrides it, and says so.
        gate_seed: seed of the gate's bootstrap (`RECSYS_SEED`).
        als: ALS hyper-parameters.
        bpr: BPR hyper-parameters (the second MF model).
        search: the nightly ALS hyper-parameter search on a validation split.
        itemknn: the item-kNN model's neighbours, weightings (searched nightly) and BM25 constants.
        ease: EASE's L2 weights (searched nightly) and the memory its dense solve may take.
        content: the item content encoder and the `hybrid` model (ContentConfig).
        holdout: the evaluate stage's temporal hold-out: `last_day` (the window's last day, the
            default: the gate compares the live model on it) or `user_last_day` (each user's own
            last active UTC day: every returning user counts, a steadier figure; no champion).
            The search validates on the day before, in the same sense.
        holdout_last_n: N > 0 = the hold-out is each user's last N positive events instead.
        warm_start: start MF fits from the previous published model's factors.
        max_events_per_user: events of one user an extract keeps (the latest); a bot beyond
            it is capped and reported in the log. 0 disables the cap.
        trending_half_life_days: the trending baseline's half-life (recsys.models.baselines).
        propensity_gamma: gamma of the item propensities p_i ~ n_i^gamma of the propensity-weighted
            hold-out recall and NDCG (Yang et al. 2018; recsys.metrics.ranking.propensity_weighted_per_user).
        dataset_keep_days: days a night's dataset artifact is kept (recsys.stages.cleanup_artifacts);
            a model's files are kept while its version is among its `keep_versions` newest, or live.
        health: the data-health checks' thresholds and whether a failed check holds the publishes.
        approval: which publishes wait for a person's approval (`off`, `first`: a model's first
            publish, `forced`: a forced one, `first_and_forced`); recsys.stages.approval.
        approval_timeout_minutes: an approval left unanswered this long counts as a rejection.
        alerts: the Airflow connections (SMTP, Slack webhook) and mail addresses of the alerts.
    """

    database_url: str = DEFAULT_DATABASE_URL
    schema: str = "recsys"
    source_table: str = "interactions"
    artifact_dir: Path = Path("artifacts")
    k: int = 10
    train_window_days: int = 90
    retention_days: tuple[int, ...] = (1, 7, 14, 30)
    retention_timezone: str = "UTC"
    active_event_types: tuple[str, ...] = ("click", "consume")
    retention_start_date: date | None = None
    positive_event_types: tuple[str, ...] = ("click", "consume")
    event_types: tuple[EventType, ...] = DEFAULT_EVENT_TYPES
    mf_confidence: str = "count"  # 'count', 'weight' or 'value' (CONFIDENCE_MODES)
    mf_backend: str = "torch"  # 'torch' or 'spark' (recsys.spark.BACKENDS): where mf_als is fitted
    spark_master: str = "local[2]"  # the master `recsys run` submits the spark backend's job to
    mf_decay_half_life_days: float = 0.0  # > 0: an event's MF confidence halves every this many days of age
    keep_versions: int = 7
    serving_alias: str = "default"
    gate_metric: str = "ndcg"
    gate_tolerance: float = 0.005  # DR gates only (absolute)
    gate_relative_tolerance: float = 0.05  # the ranking gate: a share of the live model's metric
    gate_min_users: int = 50
    gate_min_distinct_items: int = 20
    gate_bootstrap_samples: int = 1000
    gate_baseline_floor: bool = True
    gate_seed: int = 42
    score_batch_users: int = 4096
    als: ALSConfig = field(default_factory=ALSConfig)
    bpr: BPRConfig = field(default_factory=BPRConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    itemknn: ItemKNNConfig = field(default_factory=ItemKNNConfig)
    ease: EASEConfig = field(default_factory=EASEConfig)
    content: ContentConfig = field(default_factory=ContentConfig)
    holdout: str = "last_day"  # 'last_day' (the window's), 'user_last_day' (each user's own last active day)
    holdout_last_n: int = 0  # N > 0: the hold-out is each user's last N positive events instead
    warm_start: bool = True  # start from the previous published model's factors for known users and items
    rl: RLConfig = field(default_factory=RLConfig)
    ope: OPEConfig = field(default_factory=OPEConfig)
    max_events_per_user: int = 100_000  # a user beyond it (a bot) keeps only the latest ones; 0: no cap
    trending_half_life_days: float = 7.0
    propensity_gamma: float = 0.5
    dataset_keep_days: int = 14
    health: HealthConfig = field(default_factory=HealthConfig)
    approval: str = "off"  # APPROVAL_MODES: which publishes wait for a person (recsys.stages.approval)
    approval_timeout_minutes: float = 1440.0  # an unanswered approval counts as a rejection after this
    alerts: AlertConfig = field(default_factory=AlertConfig)

    def __post_init__(self) -> None:
        # fail when the settings are read, not at the night's extract or training
        object.__setattr__(self, "event_types", vocabulary(self.event_types))
        known = [t.name for t in self.event_types]
        for variable, names in (("RECSYS_POSITIVE_EVENT_TYPES", self.positive_event_types),
                                ("RECSYS_ACTIVE_EVENT_TYPES", self.active_event_types)):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ConfigurationError(
                    f"{variable} names {', '.join(map(repr, unknown))}, which is neither built in "
                    f"({', '.join(BUILT_IN_ROLES)}) nor declared in RECSYS_EVENT_TYPES (known: {', '.join(known)})")
        if self.serving_alias:
            from recsys import catalogue  # standard library only, like this module

            if not self.serving_alias.isidentifier() or self.serving_alias != self.serving_alias.lower():
                raise ConfigurationError(f"RECSYS_SERVING_ALIAS {self.serving_alias!r}: use lower-case letters, "
                                         "digits and underscores (it is a model name serving queries), or '' for none")
            if catalogue.find(self.serving_alias) is not None:
                raise ConfigurationError(f"RECSYS_SERVING_ALIAS {self.serving_alias!r} is already a model's name "
                                         f"or alias ({catalogue.find(self.serving_alias).name}): choose another")
        if self.mf_confidence not in CONFIDENCE_MODES:
            raise ConfigurationError(f"RECSYS_MF_CONFIDENCE must be one of {', '.join(CONFIDENCE_MODES)}, "
                                     f"got {self.mf_confidence!r}")
        if self.mf_backend not in ("torch", "spark"):
            raise ConfigurationError(f"RECSYS_MF_BACKEND must be torch or spark, got {self.mf_backend!r}")
        if not 0.0 <= self.mf_decay_half_life_days < float("inf"):  # NaN fails the comparison too
            raise ConfigurationError("RECSYS_MF_DECAY_HALF_LIFE_DAYS must be finite and >= 0 (0 = no decay), "
                                     f"got {self.mf_decay_half_life_days!r}")
        if not 0.0 <= self.gate_relative_tolerance < float("inf"):  # NaN fails the comparison too
            raise ConfigurationError("RECSYS_GATE_RELATIVE_TOLERANCE must be finite and >= 0 (0.05 = 5% of the "
                                     f"live model's metric), got {self.gate_relative_tolerance!r}")
        if self.approval not in APPROVAL_MODES:
            raise ConfigurationError(f"RECSYS_APPROVAL must be one of {', '.join(APPROVAL_MODES)}, "
                                     f"got {self.approval!r}")
        if not 0.0 < self.approval_timeout_minutes < float("inf"):
            raise ConfigurationError("RECSYS_APPROVAL_TIMEOUT_MINUTES must be finite and > 0, "
                                     f"got {self.approval_timeout_minutes!r}")
        if self.gate_min_users < 0:
            raise ConfigurationError(f"RECSYS_GATE_MIN_USERS must be >= 0, got {self.gate_min_users!r}")
        if self.gate_bootstrap_samples < 1:
            raise ConfigurationError("RECSYS_GATE_BOOTSTRAP_SAMPLES must be >= 1, "
                                     f"got {self.gate_bootstrap_samples!r}")

    @property
    def event_type_names(self) -> tuple[str, ...]:
        """Every event type a log may hold: the built-in ones, then the declared ones."""
        return tuple(t.name for t in self.event_types)

    @property
    def positive_types(self) -> tuple[str, ...]:
        """The types MF, BPR and the baselines train on: `positive_event_types`, then the declared positive ones."""
        return with_declared(self.positive_event_types, self.event_types, "positive")

    @property
    def active_types(self) -> tuple[str, ...]:
        """The types that make a user active: `active_event_types`, then the declared positive ones."""
        return with_declared(self.active_event_types, self.event_types, "positive")

    @property
    def impression_types(self) -> tuple[str, ...]:
        """The types the RL recommenders and the off-policy estimates read as impressions."""
        return tuple(t.name for t in self.event_types if t.role == "impression")

    @property
    def rl_click_types(self) -> tuple[str, ...]:
        """The types the RL recommenders and the off-policy estimates read as clicks: `click` and the
        declared positive ones (`consume` keeps its own role there)."""
        return ("click",) + tuple(t.name for t in self.event_types if not t.built_in and t.role == "positive")

    @property
    def type_weights(self) -> dict[str, float]:
        """Event type name -> weight, for every type of the vocabulary."""
        return {t.name: t.weight for t in self.event_types}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build settings from the `RECSYS_*` variables of `recsys.settings_table`, then `overrides`.

        A variable that is unset, or empty where its type allows (a list, the OPE weight
        cap), keeps its field's default; a variable that sets several fields
        (`RECSYS_SEED`, `RECSYS_NUM_THREADS`) sets them all.

        Raises:
            ValueError: a variable's text does not parse (the message names it), or a
                sub-config refuses the value (`RLConfig`, `OPEConfig` validate theirs).
            ConfigurationError: `RECSYS_EVENT_TYPES` does not parse or declares something
                unusable, an event type list names a type that is neither built in nor
                declared, or `RECSYS_MF_CONFIDENCE` is not a mode (the message names the variable).
        """
        env = os.environ if env is None else env
        declared = {var.name for var in TABLE}
        for name in sorted(n for n in env if n.startswith("RECSYS_") and n not in declared):
            # most likely a typo, which would otherwise leave its setting at the default unseen
            logger.warning("%s is not a recsys setting and is ignored (docs/settings.md lists them)", name)
        values: dict[str, dict[str, Any]] = {}  # sub-config ("" = Settings itself) -> field -> value
        for var in FIELD_VARIABLES:
            if var.name not in env:
                continue
            value = var.parse(env[var.name])
            if value is UNSET:
                continue
            for path in var.fields:
                section, _, name = path.rpartition(".")
                values.setdefault(section, {})[name] = value
        base = cls()
        top = values.pop("", {})
        sections = {section: dataclasses.replace(getattr(base, section), **fields)
                    for section, fields in values.items()}
        settings = dataclasses.replace(base, **top, **sections)
        settings = dataclasses.replace(settings, **overrides) if overrides else settings
        if "RECSYS_GATE_TOLERANCE" in env and settings.gate_metric not in DR_GATE_METRICS:
            # its meaning for the ranking gate changed: say so rather than ignore it unseen
            logger.warning("RECSYS_GATE_TOLERANCE=%s is read by the DR gates only; the ranking gate (%s) reads "
                           "RECSYS_GATE_RELATIVE_TOLERANCE (a share of the live model's metric, now %s)",
                           env["RECSYS_GATE_TOLERANCE"], settings.gate_metric, settings.gate_relative_tolerance)
        return settings

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view without the database URL (it may hold a password)."""
        data = dataclasses.asdict(self)
        data.pop("database_url")
        data["artifact_dir"] = str(self.artifact_dir)
        return data
