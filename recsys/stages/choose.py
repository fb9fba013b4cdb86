"""Choose stage: point the serving alias at the candidate whose live lists did best tonight.

After every model's publish, the night compares what each candidate serves now (its
live lists, tonight's version or an older one the gate kept) on tonight's hold-out, and
points the alias (`RECSYS_SERVING_ALIAS`, default `default`) at the best: serving reads
`live_recommendations WHERE model = 'default'` and never changes when the winner does.
Baselines are candidates like the others, so the alias never serves a learned model
that popularity beats. Ties go to the simpler model (a baseline before a learned one).

The choice is recorded per alias and as-of date in `alias_choices` (which model won,
its figure, the runner-up's and the best baseline's, the hold-out users), replaced by a
re-run of the same date; a backfill of an older date records its choice but never moves
the alias off a newer date's. Pointer, record and view change in one transaction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Sequence

from psycopg2.extras import Json

from recsys import catalogue
from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.stages.publish import define_live_view

logger = logging.getLogger(__name__)

# Model kinds that count as baselines for the margin the record names.
BASELINE_KINDS = frozenset({"baseline"})


@dataclass(frozen=True)
class Candidate:
    """One candidate's live lists as scored on tonight's hold-out."""

    model: str
    kind: str
    live_version: str | None
    figure: float | None
    n_users: int | None


@dataclass(frozen=True)
class AliasChoice:
    """What the choose stage decided (small enough for XCom).

    Attributes:
        alias: the serving alias.
        run_date: the as-of date of the comparison.
        model: the winner; None when no candidate had a figure (the alias stays where it was).
        model_version: the winner's live version.
        moved: the alias now serves `model` (False for a backfill of an older date, or no winner).
        reason: one line naming the figures.
        figures: per candidate: its live version, figure and hold-out users.
        served_before: the version the alias served by the choice that held it before this one
            (None before its first choice); `changed` compares it with `model_version`.
    """

    alias: str
    run_date: date
    model: str | None
    model_version: str | None
    moved: bool
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    served_before: str | None = None

    @property
    def changed(self) -> bool:
        """The alias moved and serves another version than before: what serving reads changed."""
        return self.moved and self.model_version != self.served_before


def rank_candidates(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Candidates with a figure, best first; ties: baselines, then catalogue order."""
    order = {name: i for i, name in enumerate(catalogue.names())}
    scored = [c for c in candidates if c.figure is not None and c.live_version is not None]
    return sorted(scored, key=lambda c: (-c.figure, c.kind not in BASELINE_KINDS, order.get(c.model, len(order))))


def describe(ranked: Sequence[Candidate], metric: str) -> str:
    """The reason line: the winner against the runner-up and the best baseline."""
    if not ranked:
        return f"no candidate's live lists have a {metric} on tonight's hold-out: the alias stays where it was"
    winner = ranked[0]
    parts = [f"{winner.model} ({winner.live_version}) {metric} {winner.figure:.4f} on {winner.n_users} hold-out users"]
    if len(ranked) > 1:
        runner = ranked[1]
        parts.append(f"runner-up {runner.model} {runner.figure:.4f} ({winner.figure - runner.figure:+.4f})")
    baselines = [c for c in ranked[1:] if c.kind in BASELINE_KINDS]
    if winner.kind not in BASELINE_KINDS and baselines:
        best = baselines[0]
        parts.append(f"best baseline {best.model} {best.figure:.4f} ({winner.figure - best.figure:+.4f})")
    elif winner.kind in BASELINE_KINDS:
        parts.append("a baseline: no learned model's lists did better")
    return "; ".join(parts)


def choose_alias(settings: Settings, run_date: date, models: Sequence[str]) -> AliasChoice:
    """Compare the live lists of `models` on tonight's hold-out and point the alias at the best.

    Args:
        settings: database, schema, `serving_alias`, `gate_metric` (a ranking metric; under a DR
            gate NDCG is compared) and `k`.
        run_date: the night's as-of date.
        models: the candidates: the hold-out models the night trained.

    Returns:
        The choice (also in `alias_choices`).
    """
    alias = settings.serving_alias
    metric = settings.gate_metric if settings.gate_metric in RANKING_METRICS else "ndcg"
    label = f"{metric}@{settings.k}"
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "serving_aliases", "alias_choices", "live_models", "eval_metrics")
        cur.execute(load_sql("choose/candidates"),
                    {"models": list(models), "run_date": run_date, "metric": metric, "k": settings.k})
        candidates = [Candidate(model, kind, live, None if figure is None else float(figure),
                                None if users is None else int(users))
                      for model, kind, live, _live_date, _tonight, figure, users in cur.fetchall()]
        ranked = rank_candidates(candidates)
        reason = describe(ranked, label)
        figures = {c.model: {"live_version": c.live_version, "figure": c.figure, "n_users": c.n_users}
                   for c in candidates}
        winner = ranked[0] if ranked else None
        cur.execute(load_sql("choose/served_before"), {"alias": alias})
        served_before = next(iter(cur.fetchone() or ()), None)
        moved = False
        if winner is not None:
            cur.execute(load_sql("choose/point"), {"alias": alias, "model": winner.model, "run_date": run_date})
            moved = cur.fetchone() is not None
            if moved:
                define_live_view(cur)
            else:
                reason += f"; history only: a newer date's choice holds {alias}"
        cur.execute(load_sql("choose/record"), {
            "alias": alias, "run_date": run_date, "model": winner.model if winner else None,
            "model_version": winner.live_version if winner else None, "reason": reason,
            "figures": Json(figures)})
    logger.info("%s -> %s: %s", alias, winner.model if moved and winner else "(unchanged)", reason)
    return AliasChoice(alias, run_date, winner.model if winner else None, winner.live_version if winner else None,
                       moved, reason, json.loads(json.dumps(figures)), served_before)


# The hold-out metrics evaluate writes (recsys.metrics.ranking); the DR gate metrics are not among them.
RANKING_METRICS = frozenset({"ndcg", "recall", "precision", "hit_rate", "map", "mrr"})
