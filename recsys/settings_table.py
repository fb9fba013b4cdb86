"""Every `RECSYS_*` environment variable, declared once.

`TABLE` lists each variable with its type, a one-line meaning, its group in
docs/settings.md and either the `recsys.config.Settings` fields it sets
(`Settings.from_env` is a loop over those) or, for a variable that sets no
field, its default and the files that read it (a DAG file when it is parsed,
a script, docker-compose.yml, the test suite). A variable that sets a field
takes its default from the dataclass, so that default is written once.

Standard library only: DAG files read a few of these names when Airflow parses
them, and parsing must stay free of heavy imports. docs/settings.md is generated
from this table by `python scripts/gen_settings_doc.py`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys import catalogue
from recsys.event_types import parse_event_types, show_event_types


class _Unset:
    """What a variable's text parses to when it means "keep the default" (an empty list)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
FROM_FIELD: Any = object()  # EnvVar.default of a variable whose default is its field's

# the words the settings have always read as false; any other text is true
FALSE_WORDS = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Kind:
    """How a variable's text becomes a value, and how a value is written back as text."""

    label: str  # the type column of docs/settings.md
    parse: Callable[[str], Any]
    show: Callable[[Any], str] = str


def _comma_list(item: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda raw: UNSET if not raw else tuple(item(x) for x in raw.split(","))


def _names(raw: str) -> Any:
    return UNSET if not raw else tuple(x.strip() for x in raw.split(",") if x.strip())


def _optional_float(raw: str) -> Any:
    # empty keeps the default, as the variable always did; "none" turns the cap off
    if not raw:
        return UNSET
    return None if raw.strip().lower() == "none" else float(raw)


def _optional(raw: str, parse: Callable[[str], Any]) -> Any:
    # empty keeps the default; "none" sets None
    if not raw.strip():
        return UNSET
    return None if raw.strip().lower() == "none" else parse(raw.strip())


def _joined(value: Iterable[Any]) -> str:
    return ",".join(str(x) for x in value)


INT = Kind("int", int)
FLOAT = Kind("float", float)
STR = Kind("str", lambda raw: raw)
LOWER_STR = Kind("str (stripped, lower-cased)", lambda raw: raw.strip().lower())
BOOL = Kind("bool", lambda raw: raw.lower() not in FALSE_WORDS, lambda value: "1" if value else "0")
INTS = Kind("ints, comma-separated", _comma_list(int), _joined)
FLOATS = Kind("floats, comma-separated", _comma_list(float), _joined)
STRS = Kind("strs, comma-separated", _names, _joined)
OPTIONAL_FLOAT = Kind("float or `none`", _optional_float, lambda value: "none" if value is None else str(value))
EVENT_TYPE_LIST = Kind("`name:role[:weight]`, comma-separated",
                       lambda raw: UNSET if not raw.strip() else parse_event_types(raw), show_event_types)
PATH = Kind("path", Path)
DATE = Kind("date (YYYY-MM-DD)", datetime.date.fromisoformat, datetime.date.isoformat)
OPTIONAL_DATE = Kind("date (YYYY-MM-DD) or `none`", lambda raw: _optional(raw, datetime.date.fromisoformat),
                     lambda value: "none" if value is None else value.isoformat())


@dataclass(frozen=True)
class EnvVar:
    """One environment variable.

    Attributes:
        name: the variable, `RECSYS_...`.
        kind: its type.
        meaning: one line for docs/settings.md.
        group: a key of GROUPS.
        fields: the Settings fields it sets, dotted from Settings ("k", "als.factors");
            empty for a variable that only scripts, DAG files or tests read.
        default: the value when unset, for a variable that sets no field.
        read_by: files that read the variable themselves (besides Settings.from_env),
            each entry the file's path, optionally followed by when it is read.
    """

    name: str
    kind: Kind
    meaning: str
    group: str
    fields: tuple[str, ...] = ()
    default: Any = FROM_FIELD
    read_by: tuple[str, ...] = ()

    def parse(self, raw: str) -> Any:
        """The value of `raw`, or UNSET when `raw` means the default (an empty list)."""
        try:
            return self.kind.parse(raw)
        except ValueError as exc:
            raise ValueError(f"{self.name}={raw!r}: expected {self.kind.label} ({exc})") from exc


GROUPS = {
    "paths": "Database and paths",
    "night": "The night",
    "gate": "Gate",
    "health": "Data health",
    "alerts": "Alerts and the deadline",
    "retention": "Retention",
    "als": "ALS",
    "bpr": "BPR",
    "search": "ALS hyper-parameter search",
    "item_item": "Item-item models (itemknn, EASE)",
    "content": "Item content vectors and the hybrid model",
    "rl": "RL recommenders",
    "ope": "Off-policy evaluation",
    "airflow": "Airflow and DAG parse time",
    "scripts": "Scripts and tests",
}

PARSED = "at parse time"  # by Airflow's DAG processor, with the stdlib alone

TABLE: tuple[EnvVar, ...] = (
    # database and paths
    EnvVar("RECSYS_DATABASE_URL", STR, "SQLAlchemy URL of the data database (not Airflow's metadata database); "
           "`postgresql://` is served by psycopg2 too, another driver is refused", "paths",
           fields=("database_url",),
           read_by=("recsys/airflow_support.py (when unset, the `recsys_db` Airflow connection gives the URL)",
                    "plugins/recsys_ui.py (likewise)", "scripts/demo.sh (when unset, an embedded server)")),
    EnvVar("RECSYS_SCHEMA", STR, "PostgreSQL schema of every recsys table (quoted as an identifier)", "paths",
           fields=("schema",), read_by=(f"recsys/assets.py {PARSED} (the DAG files' asset URIs)",)),
    EnvVar("RECSYS_SOURCE_TABLE", STR, "table or view the extract reads interactions from (`name` in the schema "
           "or `schema.name`)", "paths", fields=("source_table",)),
    EnvVar("RECSYS_ARTIFACT_DIR", PATH, "datasets and model files, one folder per as-of date; every worker must "
           "see the same one", "paths", fields=("artifact_dir",)),
    # the night
    EnvVar("RECSYS_K", INT, "length of each published recommendation list", "night", fields=("k",)),
    EnvVar("RECSYS_TRAIN_WINDOW_DAYS", INT, "days of history, ending at the interval end, that train a model",
           "night", fields=("train_window_days",)),
    EnvVar("RECSYS_POSITIVE_EVENT_TYPES", STRS, "event types that count as implicit positive feedback (the types "
           "`RECSYS_EVENT_TYPES` declares with role positive count as well)", "night",
           fields=("positive_event_types",)),
    EnvVar("RECSYS_EVENT_TYPES", EVENT_TYPE_LIST, "event types beyond the built-in `impression`, `click`, "
           "`consume` (or weights for those), each `name:role[:weight]` with role `impression` or `positive` and "
           "weight > 0 (default 1), e.g. `pv:positive:1,buy:positive:4`; a positive type trains MF and counts as "
           "activity, an impression type is an impression for RL and OPE; the log's other types are refused",
           "night", fields=("event_types",)),
    EnvVar("RECSYS_MF_CONFIDENCE", LOWER_STR, "the MF input of a (user, item) pair: `count` of its positive "
           "events, `weight` (sum of their types' weights) or `value` (sum of their `value`s, NULL = the type's "
           "weight; a negative value is refused); ALS weighs it, BPR reads only which pairs exist", "night",
           fields=("mf_confidence",)),
    EnvVar("RECSYS_MF_DECAY_HALF_LIFE_DAYS", FLOAT, "time-decayed ALS confidence: each positive event's share of "
           "its pair's MF input halves every this many days of age at the window's end (the as-of date); 0 = no "
           "decay", "night", fields=("mf_decay_half_life_days",)),
    EnvVar("RECSYS_MF_BACKEND", LOWER_STR, "where mf_als is fitted: `torch` (this worker) or `spark` (the window "
           "exported to Parquet and fitted by pyspark.ml's ALS through spark-submit; the nightly DAG's `mf_backend` "
           "param overrides it per run; docs/scaling.md)", "night", fields=("mf_backend",),
           read_by=(f"dags/recsys_nightly.py {PARSED} (the `mf_backend` param's default)",)),
    EnvVar("RECSYS_SPARK_MASTER", STR, "the Spark master `recsys run` submits the spark backend's job to (the "
           "DAG uses its `spark_default` connection instead): `local[2]`, `spark://host:7077`, `yarn`", "night",
           fields=("spark_master",)),
    EnvVar("RECSYS_SPARK_PYTHON", STR, "the Python the Spark executors run the job with (it needs pyspark, numpy, "
           "pandas, pyarrow); unset: the worker's own interpreter, right for `local[2]` and a cluster on the same "
           "image", "night", default="",
           read_by=(f"recsys/spark/__init__.py {PARSED} (the DAG's spark_fit conf) and by `recsys run`",)),
    EnvVar("RECSYS_HOLDOUT", STR, "the evaluate stage's hold-out: `last_day` (the window's last day; the gate "
           "scores the live model on it) or `user_last_day` (each user's own last active day; no champion)",
           "night", fields=("holdout",)),
    EnvVar("RECSYS_HOLDOUT_LAST_N", INT, "N > 0: the hold-out is each user's last N positive events instead",
           "night", fields=("holdout_last_n",)),
    EnvVar("RECSYS_WARM_START", BOOL, "start the MF fits from the previous published model's factors for known "
           "users and items", "night", fields=("warm_start",)),
    EnvVar("RECSYS_MAX_EVENTS_PER_USER", INT, "events of one user an extract keeps (the latest); a user above it "
           "(a bot) is capped and named in the log; 0 = no cap", "night", fields=("max_events_per_user",)),
    EnvVar("RECSYS_TRENDING_HALF_LIFE_DAYS", FLOAT, "the trending baseline's half-life: an event this many days "
           "older than the window's newest counts half (a news surface wants about 1)", "night",
           fields=("trending_half_life_days",)),
    EnvVar("RECSYS_PROPENSITY_GAMMA", FLOAT, "gamma of the item propensity p_i ~ n_i^gamma (n_i: the item's "
           "users in the window) that weighs each held-out positive by 1 / p_i in the propensity-weighted recall "
           "and NDCG beside the plain ones (Yang et al. 2018); 0 = the plain figures", "night",
           fields=("propensity_gamma",)),
    EnvVar("RECSYS_DATASET_KEEP_DAYS", INT, "days a night's dataset artifact is kept before the artifact "
           "retention deletes it (never one a live version was trained on); 0 = keep every dataset", "night",
           fields=("dataset_keep_days",)),
    EnvVar("RECSYS_KEEP_VERSIONS", INT, "published versions of each model kept as history", "night",
           fields=("keep_versions",)),
    EnvVar("RECSYS_SERVING_ALIAS", STR, "the model name whose live lists are those of the candidate that did "
           "best on the night's hold-out (`live_recommendations WHERE model = 'default'`); empty: no alias",
           "night", fields=("serving_alias",),
           read_by=(f"recsys/assets.py {PARSED} (the asset the choose step emits)",)),
    EnvVar("RECSYS_SEED", INT, "seed of every stochastic step: the MF and RL fits, the OPE bootstrap and the "
           "gate's", "night", fields=("als.seed", "bpr.seed", "rl.seed", "ope.seed", "gate_seed")),
    EnvVar("RECSYS_NUM_THREADS", INT, "CPU threads of the MF fits; 0 = the CPUs given to the task "
           "(`sched_getaffinity`)", "night", fields=("als.num_threads", "bpr.num_threads")),
    # gate
    EnvVar("RECSYS_GATE_METRIC", STR, "what the champion/challenger gate compares: a hold-out ranking metric at K "
           "(`ndcg`, `recall`, ...) or the off-policy return rate (`dr_return_lcb`, `dr_return_diff_lcb`)", "gate",
           fields=("gate_metric",)),
    EnvVar("RECSYS_GATE_TOLERANCE", FLOAT, "the DR gates' tolerance (`dr_return_lcb`, `dr_return_diff_lcb`): how "
           "much lower (absolute, in return rate) than the live model a new model may be and still go live. The "
           "ranking gate no longer reads it (it reads `RECSYS_GATE_RELATIVE_TOLERANCE`; a warning says so when it "
           "is set under a ranking metric)", "gate", fields=("gate_tolerance",)),
    EnvVar("RECSYS_GATE_RELATIVE_TOLERANCE", FLOAT, "the ranking gate's tolerance as a share of the live model's "
           "hold-out metric (0.05 = 5%): the new model goes live when the lower bound of the 95% paired bootstrap "
           "interval of (new - live) over the hold-out users is >= -tolerance x live", "gate",
           fields=("gate_relative_tolerance",)),
    EnvVar("RECSYS_GATE_MIN_USERS", INT, "hold-out users below which the ranking metric decides nothing: the live "
           "model stays, or the first model goes live, with that reason recorded; 0 = any number decides", "gate",
           fields=("gate_min_users",)),
    EnvVar("RECSYS_GATE_MIN_DISTINCT_ITEMS", INT, "an RL model whose lists hold fewer distinct items than this "
           "(all users together) has collapsed onto a few items for everyone and is not published; 0 = no "
           "such rule", "gate", fields=("gate_min_distinct_items",)),
    EnvVar("RECSYS_GATE_BOOTSTRAP_SAMPLES", INT, "replicates of the ranking gate's paired bootstrap over users "
           "(seeded by `RECSYS_SEED`: a re-run decides the same)", "gate", fields=("gate_bootstrap_samples",)),
    EnvVar("RECSYS_GATE_BASELINE_FLOOR", BOOL, "no learned model goes live while its hold-out metric is below the "
           "best baseline's on the same users (popularity and trending, scored beside it, and the night's models "
           "of kind `baseline`); `force_publish` overrides it and says so", "gate",
           fields=("gate_baseline_floor",)),
    EnvVar("RECSYS_APPROVAL", LOWER_STR, "which publishes wait for a person's approval in the Airflow UI's "
           "Required Actions: `off`, `first` (a model's first publish: no live version yet), `forced` (a run with "
           "`force_publish`) or `first_and_forced`; `recsys run` publishes those only with `--approve`", "gate",
           fields=("approval",)),
    EnvVar("RECSYS_APPROVAL_TIMEOUT_MINUTES", FLOAT, "minutes an approval may stay unanswered; then it counts as "
           "Reject (nothing published, recorded as timed out)", "gate", fields=("approval_timeout_minutes",)),
    # data health
    EnvVar("RECSYS_HEALTH_HISTORY_DAYS", INT, "trailing days whose median is each data-health check's baseline",
           "health", fields=("health.history_days",)),
    EnvVar("RECSYS_HEALTH_NEW_LOOKBACK_DAYS", INT, "a user or item is new on a day when it has no event in this "
           "many days before it", "health", fields=("health.new_lookback_days",)),
    EnvVar("RECSYS_HEALTH_MIN_VOLUME_RATIO", FLOAT, "the day's events below this times the trailing median put the "
           "night's publishes on hold; 0 = no lower bound", "health", fields=("health.min_volume_ratio",)),
    EnvVar("RECSYS_HEALTH_MAX_VOLUME_RATIO", FLOAT, "the day's events above this times the trailing median put "
           "the publishes on hold; `inf` = no upper bound", "health", fields=("health.max_volume_ratio",)),
    EnvVar("RECSYS_HEALTH_MAX_CTR_CHANGE", FLOAT, "click-through (positives / impressions) below median x (1 - "
           "this) or above median / (1 - this) holds the publishes (0 <= x < 1)", "health",
           fields=("health.max_ctr_change",)),
    EnvVar("RECSYS_HEALTH_MAX_NEW_SHARE_RISE", FLOAT, "the share of the day's events from new users (or of new "
           "items) above the trailing median plus this holds the publishes", "health",
           fields=("health.max_new_share_rise",)),
    EnvVar("RECSYS_HEALTH_MAX_TAG_DROP", FLOAT, "the share of impressions with a propensity (or a model_version) "
           "below the trailing median x (1 - this) holds the publishes (0 <= x < 1)", "health",
           fields=("health.max_tag_drop",)),
    EnvVar("RECSYS_HEALTH_MIN_COMPLIANCE", FLOAT, "serving compliance (share of impressions tagged with a version "
           "whose item is in that version's published list for the user) below this holds the publishes; 0 = off",
           "health", fields=("health.min_compliance",)),
    EnvVar("RECSYS_HEALTH_WARN_ONLY", BOOL, "a failed data-health check only warns (status `warned`): the night "
           "publishes", "health", fields=("health.warn_only",)),
    # alerts
    EnvVar("RECSYS_ALERT_SMTP_CONN", STR, "Airflow connection (type `smtp`) that alerts are mailed through; "
           "not defined: no mail; empty: mail off", "alerts", fields=("alerts.smtp_conn_id",)),
    EnvVar("RECSYS_ALERT_EMAIL_TO", STR, "recipients of the alert mails, comma-separated; none: no mail", "alerts",
           fields=("alerts.email_to",)),
    EnvVar("RECSYS_ALERT_EMAIL_FROM", STR, "sender of the alert mails; empty: the SMTP connection's "
           "`from_email` extra", "alerts", fields=("alerts.email_from",)),
    EnvVar("RECSYS_ALERT_SLACK_CONN", STR, "Airflow connection (type `slackwebhook`) that alerts are posted "
           "to; not defined: no post; empty: Slack off", "alerts", fields=("alerts.slack_conn_id",)),
    EnvVar("RECSYS_LISTS_LIVE_BY", STR, "the nightly DAG's deadline, `HH:MM`: a night not done by the first "
           "HH:MM (in `RECSYS_LISTS_LIVE_TZ`) after its data interval sends a \"lists not live\" alert; "
           "empty: no deadline", "alerts", default="",
           read_by=(f"recsys/deadline.py {PARSED} (for dags/recsys_nightly.py)",)),
    EnvVar("RECSYS_LISTS_LIVE_TZ", STR, "IANA time zone of `RECSYS_LISTS_LIVE_BY` (`Europe/Berlin`)", "alerts",
           default="UTC", read_by=(f"recsys/deadline.py {PARSED} (for dags/recsys_nightly.py)",)),
    # retention
    EnvVar("RECSYS_RETENTION_DAYS", INTS, "the N of the N-day retention cells computed each night", "retention",
           fields=("retention_days",)),
    EnvVar("RECSYS_RETENTION_TIMEZONE", STR, "IANA time zone whose calendar days retention and engagement count "
           "in; a change needs `recsys retention rebuild`", "retention", fields=("retention_timezone",)),
    EnvVar("RECSYS_ACTIVE_EVENT_TYPES", STRS, "event types that make a user active (the declared types of role "
           "positive do too); a change, or a newly declared positive type, needs "
           "`recsys retention rebuild`", "retention", fields=("active_event_types",)),
    EnvVar("RECSYS_RETENTION_START_DATE", OPTIONAL_DATE, "the first day retention counts (`none`: the whole "
           "log); events before it make no cohort. A change needs `recsys retention rebuild`", "retention",
           fields=("retention_start_date",)),
    # ALS
    EnvVar("RECSYS_ALS_FACTORS", INT, "latent factors (when the search is off or has no validation user)", "als",
           fields=("als.factors",)),
    EnvVar("RECSYS_ALS_REGULARIZATION", FLOAT, "L2 regularisation (when the search is off or has no validation "
           "user)", "als", fields=("als.regularization",)),
    EnvVar("RECSYS_ALS_ALPHA", FLOAT, "confidence c = 1 + alpha * count (when the search is off or has no "
           "validation user)", "als", fields=("als.alpha",)),
    EnvVar("RECSYS_ALS_UNOBSERVED_WEIGHT", FLOAT, "alpha_0, the weight of an unobserved (user, item) pair (Hu et "
           "al.'s 1; when the search is off or has no validation user)", "als", fields=("als.unobserved_weight",)),
    EnvVar("RECSYS_ALS_REG_EXPONENT", FLOAT, "nu of the frequency-scaled L2 weight regularisation x (n_u + "
           "alpha_0 x n_items)^nu of a user (likewise of an item; Rendle et al. 2022); 0 = the same for every row "
           "(when the search is off or has no validation user)", "als", fields=("als.reg_exponent",)),
    EnvVar("RECSYS_ALS_ITERATIONS", INT, "iterations of a fit from scratch", "als", fields=("als.iterations",)),
    EnvVar("RECSYS_ALS_WARM_ITERATIONS", INT, "iterations when starting from the previous published model", "als",
           fields=("als.warm_iterations",)),
    # BPR
    EnvVar("RECSYS_BPR_FACTORS", INT, "latent factors", "bpr", fields=("bpr.factors",)),
    EnvVar("RECSYS_BPR_LEARNING_RATE", FLOAT, "step size at the start of the fit (it decays linearly to 0)", "bpr",
           fields=("bpr.learning_rate",)),
    EnvVar("RECSYS_BPR_REGULARIZATION", FLOAT, "L2 regularisation", "bpr", fields=("bpr.regularization",)),
    EnvVar("RECSYS_BPR_ITERATIONS", INT, "epochs, each of as many sampled triples as interactions", "bpr",
           fields=("bpr.iterations",)),
    # search
    EnvVar("RECSYS_ALS_SEARCH", BOOL, "pick ALS factors, alpha and regularisation each night by a small grid on a "
           "validation split just before the hold-out", "search", fields=("search.enabled",)),
    EnvVar("RECSYS_ALS_SEARCH_FACTORS", INTS, "factor counts the search tries: the first for every point of the "
           "grid, the others for its best points", "search", fields=("search.factors",)),
    EnvVar("RECSYS_ALS_SEARCH_ALPHAS", FLOATS, "confidence alphas the search tries", "search",
           fields=("search.alphas",)),
    EnvVar("RECSYS_ALS_SEARCH_REGULARIZATIONS", FLOATS, "L2 weights the search tries, as a typical row's weight "
           "(with an exponent nu > 0 rescaled by the window's mean observation count, docs/ials.md)", "search",
           fields=("search.regularizations",)),
    EnvVar("RECSYS_ALS_SEARCH_REG_EXPONENTS", FLOATS, "frequency-scaling exponents nu the search tries (0: plain "
           "L2; 1: Rendle et al.'s)", "search", fields=("search.reg_exponents",)),
    EnvVar("RECSYS_ALS_SEARCH_UNOBSERVED_WEIGHTS", FLOATS, "unobserved weights alpha_0 the search tries", "search",
           fields=("search.unobserved_weights",)),
    EnvVar("RECSYS_ALS_SEARCH_REFINE_TOP", INT, "best points of the first factor count refitted with each other "
           "factor count; 0 = the whole grid with every factor count", "search", fields=("search.refine_top",)),
    # item-item models
    EnvVar("RECSYS_ITEMKNN_NEIGHBOURS", INTS, "neighbours kept per item by `itemknn`; with several values (or "
           "weightings) every pair is fitted on the validation day before the hold-out and the best kept",
           "item_item", fields=("itemknn.neighbours",)),
    EnvVar("RECSYS_ITEMKNN_WEIGHTINGS", STRS, "similarities `itemknn` searches: `cosine` and/or `bm25` (the "
           "item-user matrix BM25-weighted, as implicit's BM25Recommender)", "item_item",
           fields=("itemknn.weightings",)),
    EnvVar("RECSYS_ITEMKNN_SHRINKAGE", FLOAT, "added to the cosine's denominator: pulls the similarity of items "
           "with few users towards 0", "item_item", fields=("itemknn.shrinkage",)),
    EnvVar("RECSYS_ITEMKNN_BM25_K1", FLOAT, "BM25's K1 (term saturation) of the `bm25` weighting", "item_item",
           fields=("itemknn.bm25_k1",)),
    EnvVar("RECSYS_ITEMKNN_BM25_B", FLOAT, "BM25's B (item length normalisation, 0..1) of the `bm25` weighting",
           "item_item", fields=("itemknn.bm25_b",)),
    EnvVar("RECSYS_EASE_LAMBDAS", FLOATS, "L2 weights `ease` fits; with several, each is fitted on the validation "
           "day before the hold-out and the best kept", "item_item", fields=("ease.lambdas",)),
    EnvVar("RECSYS_EASE_MAX_MEMORY_MB", INT, "MiB the EASE solve may take: a catalogue needing more "
           "(n_items^2 x 8 bytes x 2) is refused with the item count and the bytes it needs", "item_item",
           fields=("ease.max_memory_mb",)),
    # item content and the hybrid model
    EnvVar("RECSYS_CONTENT_ENCODER", STR, "item text encoder: `tfidf` (TF-IDF + truncated SVD fitted on the "
           "catalogue, the default) or `sentence-transformers:<local model path or installed package>` (needs the "
           "`content` extra)", "content", fields=("content.encoder",)),
    EnvVar("RECSYS_CONTENT_DIM", INT, "components of the TF-IDF encoder's truncated SVD (capped by the catalogue's "
           "size); a sentence-transformers model has its own", "content", fields=("content.dim",)),
    EnvVar("RECSYS_CONTENT_REFIT_SHARE", FLOAT, "the TF-IDF space is refitted (a new encoder version, every item "
           "embedded again) when catalogue items outside the stored fit exceed this share; below it new and "
           "changed items are transformed with the stored fit", "content", fields=("content.refit_share",)),
    EnvVar("RECSYS_HYBRID_RIDGE", FLOAT, "L2 weight of `hybrid`'s ridge map from content vectors to MF item "
           "factors", "content", fields=("content.ridge",)),
    EnvVar("RECSYS_HYBRID_PROFILE_WEIGHTS", FLOATS, "weights of the user's content profile beside the MF score that "
           "`hybrid` tries on the validation day before the hold-out (the best kept)", "content",
           fields=("content.profile_weights",)),
    EnvVar("RECSYS_HYBRID_HALF_LIFE_DAYS", FLOAT, "half-life of a click's weight in `hybrid`'s content profile of a "
           "user", "content", fields=("content.half_life_days",)),
    # RL
    EnvVar("RECSYS_RL_GAMMA", FLOAT, "discount of the user's next session's value in the reward", "rl",
           fields=("rl.gamma",)),
    EnvVar("RECSYS_RL_RETENTION_WEIGHT", FLOAT, "weight of the user's return in the reward", "rl",
           fields=("rl.retention_weight",)),
    EnvVar("RECSYS_RL_RETURN_HORIZON_DAYS", INT, "calendar days after a session's day within which another "
           "session counts as a return", "rl", fields=("rl.return_horizon_days",)),
    EnvVar("RECSYS_RL_RETENTION_CREDIT", STR, "impressions that get a session's retention credit: `clicked`, "
           "`consumed` or `session` (all)", "rl", fields=("rl.retention_credit",)),
    EnvVar("RECSYS_RL_CONSUME_WEIGHT", FLOAT, "reward of a consumption on top of its click's 1 (finite, >= 0)",
           "rl", fields=("rl.consume_weight",)),
    EnvVar("RECSYS_RL_ABANDON_PENALTY", FLOAT, "cost of a click the user did not consume (finite, >= 0)", "rl",
           fields=("rl.abandon_penalty",)),
    EnvVar("RECSYS_RL_ENCODER", LOWER_STR, "state encoder: `gru` or `sasrec` (causal self-attention)", "rl",
           fields=("rl.encoder",)),
    EnvVar("RECSYS_RL_WEIGHT_CAP", FLOAT, "importance weights pi / beta are clipped here in training", "rl",
           fields=("rl.weight_cap",)),
    EnvVar("RECSYS_RL_STOP_MIN_ESS_SHARE", FLOAT, "REINFORCE stops early (keeping the last healthy epoch) when an "
           "epoch's effective sample size of pi / beta falls below this share of its impressions; 0 = off", "rl",
           fields=("rl.stop_min_ess_share",)),
    EnvVar("RECSYS_RL_STOP_MIN_ENTROPY_SHARE", FLOAT, "REINFORCE stops early (keeping the last healthy epoch) when "
           "the policy's entropy falls below this share of the uniform policy's (a collapse); 0 = off", "rl",
           fields=("rl.stop_min_entropy_share",)),
    EnvVar("RECSYS_RL_MIN_DISTINCT_ITEMS", INT, "coverage floor: an RL policy's published lists hold at least this "
           "many distinct items (a collapsed policy's lists are spread, each item capped at 1/floor of the slots); "
           "0 = off", "rl", fields=("rl.min_distinct_items",)),
    EnvVar("RECSYS_RL_EPOCHS", INT, "training epochs over the logged sessions", "rl", fields=("rl.epochs",)),
    EnvVar("RECSYS_RL_SESSIONS_PER_EPOCH", INT, "REINFORCE's sessions per epoch: sessions with a click first, the "
           "rest drawn at random and reweighted (1 / inclusion probability); 0 = every session", "rl",
           fields=("rl.sessions_per_epoch",)),
    EnvVar("RECSYS_RL_NUM_THREADS", INT, "torch threads of the RL fits; 0 = 1 too (the networks are small)", "rl",
           fields=("rl.num_threads",)),
    # OPE
    EnvVar("RECSYS_OPE_WEIGHT_CAP", OPTIONAL_FLOAT, "importance weights are clipped here; `none` = no clipping, "
           "empty = the default", "ope", fields=("ope.weight_cap",)),
    EnvVar("RECSYS_OPE_BOOTSTRAP", INT, "bootstrap resamples of each estimate's interval", "ope",
           fields=("ope.n_bootstrap",)),
    EnvVar("RECSYS_OPE_EXPLORE", FLOAT, "per-slot exploration assumed for a candidate list policy", "ope",
           fields=("ope.explore",)),
    EnvVar("RECSYS_OPE_SESSION_WEIGHT", STR, "a session's weight for the return rate: `mean` or `pseudo_inverse`",
           "ope", fields=("ope.session_weight",)),
    # Airflow and DAG parse time: read by the stdlib alone, so these set no Settings field
    EnvVar("RECSYS_NIGHTLY_MODELS", STRS, "the nightly DAG's default `models` parameter (names the catalogue "
           "does not know are dropped); unset: the catalogue's default models", "airflow",
           default=tuple(catalogue.default_names()),
           read_by=(f"dags/recsys_nightly.py {PARSED}",)),
    EnvVar("RECSYS_TRAINING_POOL", STR, "Airflow pool of the training and evaluation tasks", "airflow",
           default="recsys_training",
           read_by=(f"dags/recsys_nightly.py {PARSED}", f"dags/recsys_closed_loop.py {PARSED}")),
    EnvVar("RECSYS_DAG_START_DATE", DATE, "the nightly DAG's start date (UTC): the earliest date a backfill "
           "reaches", "airflow", default=datetime.date(2026, 1, 1),
           read_by=(f"dags/recsys_nightly.py {PARSED}",)),
    EnvVar("RECSYS_SIM_MAX_DAYS", INT, "day groups the closed-loop DAG generates: the most days one simulation "
           "run can have", "airflow", default=60, read_by=(f"dags/recsys_closed_loop.py {PARSED}",)),
    EnvVar("RECSYS_EXECUTOR", STR, "executor of the compose services: `LocalExecutor`, or `CeleryExecutor` with "
           "`--profile celery`", "airflow", default="LocalExecutor", read_by=("docker-compose.yml",)),
    # scripts and tests
    EnvVar("RECSYS_VENV", PATH, "virtualenv the scripts create and install into (`$ROOT` is the repository; "
           "docker-compose.yml sets `/opt/recsys/venv`)", "scripts", default=Path("$ROOT/.venv"),
           read_by=("scripts/_env.sh",)),
    EnvVar("RECSYS_DEMO_DATA", STR, "the demo's data: `simulate` or `movielens`", "scripts", default="simulate",
           read_by=("scripts/demo.sh",)),
    EnvVar("RECSYS_DEMO_NIGHTS", INT, "nights the demo runs through Airflow", "scripts", default=3,
           read_by=("scripts/demo.sh",)),
    EnvVar("RECSYS_MOVIELENS_PATH", PATH, "MovieLens 100K `u.data` that the demo loads with "
           "`RECSYS_DEMO_DATA=movielens`", "scripts", default=Path("$ROOT/../shared/datasets/movielens-100k/u.data"),
           read_by=("scripts/demo.sh",)),
    EnvVar("RECSYS_SKIP_INSTALL", STR, "`1`: use `RECSYS_VENV` as it is, neither creating nor installing it "
           "(the tests that run the scripts, from a virtualenv that is already installed)", "scripts", default="0",
           read_by=("scripts/_env.sh",)),
    EnvVar("RECSYS_DEMO_USERS", INT, "users the demo simulates", "scripts", default=3000,
           read_by=("scripts/demo.sh",)),
    EnvVar("RECSYS_DEMO_ITEMS", INT, "items the demo simulates", "scripts", default=1500,
           read_by=("scripts/demo.sh",)),
    EnvVar("RECSYS_DEMO_STATE", PATH, "the demo's state: the embedded server's data, `AIRFLOW_HOME`, artifacts, "
           "logs, and the pid files and logs of `scripts/serve.sh` (in `serve/`)", "scripts",
           default=Path("$ROOT/.recsys"), read_by=("scripts/_demo_env.sh",)),
    EnvVar("RECSYS_UI_PORT", INT, "port on 127.0.0.1 of the Airflow UI that `scripts/serve.sh` starts", "scripts",
           default=8080, read_by=("scripts/serve.sh",)),
    EnvVar("RECSYS_TEST_ADMIN_URL", STR, "admin URL of the PostgreSQL the tests create their databases on; when "
           "it does not answer, an embedded server is started", "scripts",
           default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", read_by=("tests/conftest.py",)),
)

BY_NAME = {var.name: var for var in TABLE}
FIELD_VARIABLES = tuple(var for var in TABLE if var.fields)


def field_value(settings: object, path: str) -> Any:
    """The value at a dotted field path ("als.factors") of a Settings object."""
    value = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def default_of(var: EnvVar, defaults: object) -> Any:
    """`var`'s default: its first field's in `defaults` (a default Settings), else its own."""
    return field_value(defaults, var.fields[0]) if var.fields else var.default


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _where(var: EnvVar) -> str:
    parts = []
    if var.fields:
        parts.append("Sets " + ", ".join(f"`Settings.{path}`" for path in var.fields) + ".")
    if var.read_by:
        readers = []
        for entry in var.read_by:
            path, _, when = entry.partition(" ")
            readers.append(f"`{path}`" + (f" {when}" if when else ""))
        parts.append(("Also read" if var.fields else "Read") + " by " + "; ".join(readers) + ".")
    return " ".join(parts)


INTRO = """\
# Settings

<!-- Generated by `python scripts/gen_settings_doc.py` from `recsys/settings_table.py`:
edit the table, then run the script; tests/test_config.py fails while this file is stale. -->

Every setting is an environment variable. `Settings.from_env()` (`recsys/config.py`) reads
those that set a field of `Settings`; DAG parameters (`k`, `train_window_days`) and CLI flags
override single fields per run. Inside Airflow, the `recsys_db` connection supplies the
database URL when `RECSYS_DATABASE_URL` is unset. Fields without a variable (for example
`ALSConfig.cg_steps` or the search grid) keep their defaults in `recsys/config.py`.
The last two groups set no field: DAG files, scripts, docker-compose.yml and the test
suite read them themselves, as each row says.

Types: a `bool` is false for `0`, `false`, `no` or `off` (any case) and true for any
other text; a comma-separated list that is empty keeps its default, as does an empty
`float or none`; an `int` or `float` that does not parse fails with the variable's name.
"""


def render_markdown(defaults: object) -> str:
    """docs/settings.md: INTRO, then one table per group. `defaults` is a default Settings."""
    lines = [INTRO]
    for group, title in GROUPS.items():
        lines += [f"## {title}", "", "| variable | type | default | meaning |", "|---|---|---|---|"]
        for var in (v for v in TABLE if v.group == group):
            shown = var.kind.show(default_of(var, defaults))
            meaning = var.meaning[0].upper() + var.meaning[1:] + ". " + _where(var)
            lines.append(f"| `{var.name}` | {_cell(var.kind.label)} | `{_cell(shown)}` | {_cell(meaning.strip())} |")
        lines.append("")
    return "\n".join(lines)
