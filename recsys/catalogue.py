"""The model catalogue: one declaration per model, and the only place that names them.

The DAG, `recsys run` (`recsys.pipeline.run_night`), the registry, the gate, the UI and
the closed loop all iterate `MODELS`. To add a model, add one `ModelSpec` here and write
its module (its train function, under `recsys/models/` plus a stage function if it
needs one); `recsys.night` then gives it its steps, the DAG its task group, and
`recsys run --models` accepts it.

Standard library only: the DAG files import this module when they are parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from recsys.errors import ConfigurationError

Readout = Literal["holdout", "off_policy"]


@dataclass(frozen=True)
class ModelSpec:
    """How one model trains, is evaluated, scored and gated; its DAG task group is its name.

    Attributes:
        name: the model's name in `model_runs.model`, `live_recommendations.model`, version
            strings (`<name>@<date>`) and the DAG's task group.
        kind: `model_runs.model_kind` ("mf" for factor models, "rl" for policies, "baseline" for
            the models every learned one must beat, "item_item" for models that score a user's
            history times an item-item matrix, "hybrid" for factor models that also place items
            from their content).
        summary: one line for `--help`, the DAG's docs and the UI.
        train: "module:function" called as `fn(settings, interval, dataset_path, triggered_by,
            model=name, **train_kwargs)`; it saves a `FactorModel` or an `ItemItemModel`
            artifact (`recsys.models.saved.load_model` reads either), registers the version and
            returns a manifest with `model_version`.
        readout: "holdout": `evaluate` scores it on the window's temporal hold-out before the
            gate, and scoring (mapped over user shards) waits for the gate. "off_policy": it
            is scored first (one shard) and its lists get an off-policy estimate on the
            logged impressions before the gate (`recsys.stages.ope`).
        evaluate: "module:function" of the hold-out evaluation (readout "holdout"; an "off_policy"
            model may have one too, which its gate reads when there is no off-policy estimate), called as
            `fn(settings, interval, dataset_path, version, **evaluate_kwargs)`, returning the
            headline metrics; None: no hold-out figures (the ranking gate then publishes the
            fresher model, and says so).
        ranking_gate: whether the hold-out ranking gate (`RECSYS_GATE_METRIC=ndcg`, ...) applies.
            Models without a ranking hold-out pass it; the DR gates apply to every model.
        after: models whose train step must have finished (successfully or not) before this
            model's train starts, because it reads their output when it is there.
        default: trained by `recsys run` and scheduled runs when no model list is given.
        closed_loop_arm: one of the closed loop's default arms.
        aliases: other names `recsys recommend --model` accepts.
    """

    name: str
    kind: str
    summary: str
    train: str
    readout: Readout = "holdout"
    evaluate: str | None = None
    train_kwargs: Mapping[str, Any] = field(default_factory=dict)
    evaluate_kwargs: Mapping[str, Any] = field(default_factory=dict)
    ranking_gate: bool = True
    after: tuple[str, ...] = ()
    default: bool = False
    closed_loop_arm: bool = False
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            # the name becomes a task group id and part of a table name
            raise ConfigurationError(f"model name {self.name!r}: use lower-case letters, digits and underscores")
        if self.readout not in ("holdout", "off_policy"):
            raise ConfigurationError(f"model {self.name}: readout must be 'holdout' or 'off_policy', "
                                     f"got {self.readout!r}")
        object.__setattr__(self, "train_kwargs", MappingProxyType(dict(self.train_kwargs)))
        object.__setattr__(self, "evaluate_kwargs", MappingProxyType(dict(self.evaluate_kwargs)))


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="mf_als", kind="mf",
        summary="implicit ALS (Hu, Koren & Volinsky 2008), factors/alpha/regularisation searched nightly",
        train="recsys.stages.train:train_als", evaluate="recsys.stages.evaluate:evaluate_holdout",
        evaluate_kwargs={"algorithm": "als"}, default=True, closed_loop_arm=True, aliases=("mf", "als"),
    ),
    ModelSpec(
        name="mf_bpr", kind="mf", summary="BPR (Rendle et al. 2009), pairwise ranking on the same matrix",
        train="recsys.stages.train:train_bpr", evaluate="recsys.stages.evaluate:evaluate_holdout",
        evaluate_kwargs={"algorithm": "bpr"}, aliases=("bpr",),
    ),
    # What a team gets for free: the learned models must beat these (they are also scored beside
    # every model in its evaluation); chosen like any model, they are published and served.
    ModelSpec(
        name="baseline_popular", kind="baseline", summary="the window's most popular items, for everyone",
        train="recsys.stages.train_baseline:train_baseline", evaluate="recsys.stages.evaluate:evaluate_holdout",
        train_kwargs={"method": "popularity"}, evaluate_kwargs={"algorithm": "popularity"}, aliases=("popular",),
    ),
    ModelSpec(
        name="baseline_trending", kind="baseline",
        summary="the most popular items with recent events weighing more (half-life RECSYS_TRENDING_HALF_LIFE_DAYS)",
        train="recsys.stages.train_baseline:train_baseline", evaluate="recsys.stages.evaluate:evaluate_holdout",
        train_kwargs={"method": "trending"}, evaluate_kwargs={"algorithm": "trending"}, aliases=("trending",),
    ),
    # Neighbourhood models, the stronger baselines of issue #18: scored as the user's history
    # times an item-item matrix (recsys.models.item_item), hyper-parameters searched nightly.
    ModelSpec(
        name="itemknn", kind="item_item",
        summary="item-item nearest neighbours, cosine or BM25-weighted (as implicit's ItemItemRecommender); "
                "neighbours and weighting searched nightly",
        train="recsys.stages.train_item_item:train_itemknn", evaluate="recsys.stages.evaluate:evaluate_holdout",
        evaluate_kwargs={"algorithm": "itemknn"}, aliases=("item_knn", "knn"),
    ),
    ModelSpec(
        name="ease", kind="item_item",
        summary="EASE (Steck 2019), the closed-form item-item regression; lambda searched nightly, refused "
                "above RECSYS_EASE_MAX_MEMORY_MB",
        train="recsys.stages.train_item_item:train_ease", evaluate="recsys.stages.evaluate:evaluate_holdout",
        evaluate_kwargs={"algorithm": "ease"},
    ),
    # Cold items (issue #19): ALS plus a map from an item's text to its factors and a content profile
    # of each user, so articles nobody has clicked yet (news) are ranked (recsys.models.hybrid).
    ModelSpec(
        name="hybrid", kind="hybrid",
        summary="ALS with a ridge map from item content vectors (RECSYS_CONTENT_ENCODER) to item factors and a "
                "recency-weighted content profile per user: ranks catalogue items no one has clicked yet",
        train="recsys.stages.train_hybrid:train_hybrid", evaluate="recsys.stages.evaluate:evaluate_holdout",
        evaluate_kwargs={"algorithm": "hybrid"}, aliases=("content",),
    ),
    ModelSpec(
        name="rl_reinforce", kind="rl",
        summary="REINFORCE with top-K off-policy correction (Chen et al. 2019), rewarding return visits",
        train="recsys.stages.train_rl:train_rl", readout="off_policy", ranking_gate=False,
        evaluate="recsys.stages.evaluate:evaluate_holdout", evaluate_kwargs={"algorithm": "reinforce"},
        # item embeddings start from the same night's ALS item factors when they are there
        train_kwargs={"learner": "reinforce", "init_from": "mf_als"}, after=("mf_als",),
        closed_loop_arm=True, aliases=("rl", "reinforce"),
    ),
    ModelSpec(
        name="rl_cql", kind="rl", summary="conservative Q-learning (Kumar et al. 2020) on the same trajectories",
        train="recsys.stages.train_rl:train_rl", readout="off_policy", ranking_gate=False,
        evaluate="recsys.stages.evaluate:evaluate_holdout", evaluate_kwargs={"algorithm": "cql"},
        train_kwargs={"learner": "cql", "init_from": "mf_als"}, after=("mf_als",), aliases=("cql",),
    ),
)


def names() -> list[str]:
    """Every model's name, in catalogue order."""
    return [spec.name for spec in MODELS]


def default_names() -> list[str]:
    """The models trained when no list is given."""
    return [spec.name for spec in MODELS if spec.default]


def closed_loop_arms() -> list[str]:
    """The models among the closed loop's default arms."""
    return [spec.name for spec in MODELS if spec.closed_loop_arm]


def find(name: str) -> ModelSpec | None:
    """The spec of `name` or of a model it is an alias of; None for a name the catalogue lacks."""
    return next((spec for spec in MODELS if name == spec.name or name in spec.aliases), None)


def get(name: str) -> ModelSpec:
    """The spec of `name` (or an alias).

    Raises:
        ConfigurationError: no model of that name, naming the known ones.
    """
    spec = find(name)
    if spec is None:
        raise ConfigurationError(f"unknown model {name!r}; the catalogue has {', '.join(names())}")
    return spec


def kind_of(name: str) -> str:
    """`model_runs.model_kind` of a model; "unknown" for a name no longer in the catalogue."""
    spec = find(name)
    return spec.kind if spec else "unknown"


def select(names_: Iterable[str] | None = None, extra: Iterable[str] = ()) -> tuple[ModelSpec, ...]:
    """The specs of `names_` (default: the default models) plus `extra`, in catalogue order,
    without repeats.

    Raises:
        ConfigurationError: a name the catalogue does not have.
    """
    wanted = {get(n).name for n in [*(default_names() if names_ is None else names_), *extra]}
    return tuple(spec for spec in MODELS if spec.name in wanted)


def parse_list(text: str | Sequence[str]) -> list[str]:
    """Model names from a comma-separated string (or a list), resolved through aliases.

    Raises:
        ConfigurationError: an unknown name.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    return [get(item.strip()).name for item in items if item.strip()]
