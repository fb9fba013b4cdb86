"""Approval before a go-live: a person confirms a model's first publish, or a forced one.

`Settings.approval` (`RECSYS_APPROVAL`) says which publishes wait for a person:

* `off` (the default): none; the approval step passes at once and publish runs as before;
* `first`: a model's first publish, when the model has no live version yet (its first
  lists would go straight to the users with nothing to compare them against in production);
* `forced`: any publish of a run with `force_publish`, which overrides the gate and the
  data-health hold;
* `first_and_forced`: both.

The approval step of a model comes after its gate (beside the score shards, so the lists
are scored while the approver reads) and before its publish. In Airflow it is a
human-in-the-loop task (an `ApprovalOperator` in the UI's Required Actions, built in
dags/recsys_nightly.py): its body (`approval_body`) shows the model, version and as-of
date, why the approval is asked, the gate's reason and the hold-out figures of the
version beside the live model's and popularity's. Approve: publish goes ahead. Reject, or
no answer within `approval_timeout_minutes`: nothing is published, the live tables stay,
and model_runs says so (`metrics['approval']`, status `rejected`) with who rejected. The
CLI has no one to ask: `recsys run` publishes such a version only with `--approve`, and
otherwise records it as not approved (`approval_of_cli_run`).

Whether a publish needs approval (`approval_reason`) and what the approver reads
(`approval_body`) are plain functions of plain values; `approval_request` reads their
inputs from the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from psycopg2.extras import Json

from recsys.config import APPROVAL_MODES, Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import NotApproved

logger = logging.getLogger(__name__)

APPROVED, REJECTED, TIMED_OUT, NOT_ASKED = "approved", "rejected", "timed_out", "not_asked"
# subjects of eval_metrics, as the approver reads them
SUBJECT_LABELS = {"model": "this version", "champion": "live", "popularity": "popularity", "ope": "this version (DR)"}
# the figures first in the table: the gate's headline metrics
HEADLINE_METRICS = ("ndcg", "recall")


@dataclass(frozen=True)
class ApprovalRequest:
    """What the approver is asked: the version, why, and the Required Action's subject and body (Markdown)."""

    model: str
    model_version: str
    run_date: str
    live_version: str | None
    why: str
    subject: str
    body: str
    timeout_minutes: float


def approval_reason(mode: str, model: str, live_version: str | None, forced: bool) -> str | None:
    """Why a publish of `model` needs a person's approval under `mode`, or None when it does not.

    Args:
        mode: one of `recsys.config.APPROVAL_MODES` (`off`, `first`, `forced`, `first_and_forced`).
        model: the model being published.
        live_version: the model's live version (None: it has none, so this is its first publish).
        forced: the run's `force_publish` parameter.

    Raises:
        ValueError: `mode` is not one of the modes.
    """
    if mode not in APPROVAL_MODES:
        raise ValueError(f"approval mode {mode!r}: expected one of {', '.join(APPROVAL_MODES)}")
    reasons = []
    if mode in ("first", "first_and_forced") and live_version is None:
        reasons.append(f"first publish of {model} (no live version yet)")
    if mode in ("forced", "first_and_forced") and forced:
        reasons.append("forced publish (force_publish overrides the gate and the data-health hold)")
    return "; ".join(reasons) or None


def approval_body(model: str, version: str, run_date: str, why: str, gate_reason: str, live_version: str | None,
                  figures: Iterable[tuple[str, str, float, int]], k: int, timeout_minutes: float) -> str:
    """The Markdown an approver reads: the version, why they are asked, the gate's reason and the
    version's figures beside the live model's and popularity's.

    Args:
        figures: (subject, metric, value, n_users) rows of eval_metrics at `k`; subject `model`
            is the version, `champion` the live model on the same hold-out users, `popularity`
            the baseline, `ope` an off-policy model's DR estimate.
    """
    table: dict[str, dict[str, float]] = {}
    users: dict[str, int] = {}
    for subject, metric, value, n_users in figures:
        table.setdefault(metric, {})[subject] = float(value)
        users.setdefault(subject, int(n_users))
    lines = [f"**Model** `{model}`, **version** `{version}`, **as-of date** {run_date}",
             "",
             f"**Why approval is asked:** {why}.",
             "",
             f"**Live now:** {f'`{live_version}`' if live_version else 'nothing (no live version of this model)'}",
             "",
             f"**Gate:** {gate_reason or 'no reason recorded'}",
             ""]
    subjects = [s for s in SUBJECT_LABELS if any(s in row for row in table.values())]
    if table:
        n = users.get("model") or users.get("ope")
        lines.append(f"**Hold-out figures at K={k}**" + (f" ({n} users)" if n else "") + ":")
        lines.append("")
        lines.append("| metric | " + " | ".join(SUBJECT_LABELS[s] for s in subjects) + " |")
        lines.append("|---|" + "---|" * len(subjects))
        ordered = [m for m in HEADLINE_METRICS if m in table] + sorted(m for m in table if m not in HEADLINE_METRICS)
        for metric in ordered:
            cells = [f"{table[metric][s]:.4f}" if s in table[metric] else "–" for s in subjects]
            lines.append(f"| {metric}@{k} | " + " | ".join(cells) + " |")
    else:
        lines.append("**Hold-out figures:** none recorded for this version.")
    lines += ["",
              f"**Approve** publishes these lists and makes them live; **Reject** publishes nothing and the live "
              f"tables stay. No answer within {timeout_minutes:g} minutes counts as Reject."]
    return "\n".join(lines)


def approval_request(settings: Settings, version: str, gate_reason: str, forced: bool) -> ApprovalRequest | None:
    """The request an approver answers before `version` is published, or None when no approval is needed.

    Raises:
        LookupError: model_runs has no such version.
    """
    if settings.approval == "off":  # no database read on the nights of the default setting
        return None
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "model_runs", "live_models", "eval_metrics")
        cur.execute(load_sql("approval/inputs"), {"model_version": version})
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"model_runs has no model_version {version!r}")
        model, run_date, live_version, _ = row
        why = approval_reason(settings.approval, model, live_version, forced)
        if why is None:
            return None
        cur.execute(load_sql("approval/figures"), {"model_version": version, "k": settings.k})
        figures = cur.fetchall()
    body = approval_body(model, version, run_date.isoformat(), why, gate_reason, live_version, figures, settings.k,
                         settings.approval_timeout_minutes)
    subject = f"Publish {version}? ({why.split(' (')[0]})"
    logger.info("publish of %s needs approval: %s", version, why)
    return ApprovalRequest(model, version, run_date.isoformat(), live_version, why, subject, body,
                           settings.approval_timeout_minutes)


def record_answer(settings: Settings, request: ApprovalRequest, outcome: str, by: str | None = None,
                  at: datetime | None = None) -> dict[str, Any]:
    """Record the answer to `request` in model_runs.metrics['approval'] and return that record.

    `outcome` is `approved`, `rejected` (by `by`), `timed_out` (no answer in time) or
    `not_asked` (`recsys run` without `--approve`). Anything but `approved` marks the version
    `rejected`.

    Raises:
        NotApproved: the outcome is not `approved` (after recording it): nothing is published.
        ValueError: an unknown outcome.
    """
    if outcome not in (APPROVED, REJECTED, TIMED_OUT, NOT_ASKED):
        raise ValueError(f"approval outcome {outcome!r}: expected approved, rejected, timed_out or not_asked")
    at = at or datetime.now(timezone.utc)
    reason = {
        APPROVED: f"approved by {by or 'an unnamed user'}",
        REJECTED: f"rejected by {by or 'an unnamed user'}",
        TIMED_OUT: f"no answer within {request.timeout_minutes:g} minutes (RECSYS_APPROVAL_TIMEOUT_MINUTES)",
        NOT_ASKED: "recsys run has no one to ask: re-run with --approve to publish it",
    }[outcome] + f" ({request.why})"
    record = {"why": request.why, "outcome": outcome, "by": by, "at": at.isoformat(), "reason": reason,
              "live_version": request.live_version}
    approved = outcome == APPROVED
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("approval/record"),
                    {"approval": Json(record), "approved": approved, "model_version": request.model_version})
    if not approved:
        logger.warning("%s not published: %s", request.model_version, reason)
        raise NotApproved(f"{request.model_version} not published: {reason}; the live tables stay")
    logger.info("%s: %s", request.model_version, reason)
    return record


def approval_of_cli_run(settings: Settings, version: str, gate: Sequence[dict[str, Any]] | None, forced: bool,
                        approved: bool) -> dict[str, Any]:
    """The approval step where no one can be asked (`recsys run`, the closed loop): the manifest.

    A publish that needs approval goes ahead only when `approved` (`recsys run --approve`),
    recorded as approved by the CLI; otherwise it is recorded `not_asked` and skipped.

    Raises:
        NotApproved: the publish needs approval and `approved` is False.
    """
    request = approval_request(settings, version, gate_reason(gate), forced)
    if request is None:
        return manifest_of(None, version)
    record_answer(settings, request, APPROVED if approved else NOT_ASKED, by="recsys run --approve" if approved else None)
    return manifest_of(request, version, APPROVED, "recsys run --approve")


def gate_reason(gate: Sequence[dict[str, Any]] | None) -> str:
    """The gate's reason from its manifest (one plan per score shard, each carrying the reason)."""
    return str(gate[0].get("reason", "")) if gate else ""


def manifest_of(request: ApprovalRequest | None, version: str, outcome: str | None = None,
                by: str | None = None) -> dict[str, Any]:
    """The approval step's manifest (XCom): whether approval was needed, and its outcome."""
    if request is None:
        return {"model_version": version, "needed": False, "outcome": None, "by": None, "why": None}
    return {"model_version": version, "needed": True, "outcome": outcome, "by": by, "why": request.why,
            "request": asdict(request)}


def request_from(manifest: dict[str, Any]) -> ApprovalRequest:
    """The ApprovalRequest kept in a manifest (the HITL task hands it from its ask to its answer)."""
    return ApprovalRequest(**manifest["request"])
