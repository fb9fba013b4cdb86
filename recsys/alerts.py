"""The text of an alert: a task that failed after its last retry, a model the gate kept
out, or lists not live by the deadline.

Plain data and strings only: `recsys.airflow_support` gathers the facts from Airflow's
context and sends the result through Airflow's notifiers (SMTP and a Slack webhook), so
what a message says is tested here without Airflow.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

FAILED, REJECTED, LATE = "failed", "rejected", "late"
_HEADLINES = {FAILED: "failed after its last try", REJECTED: "not published", LATE: "lists not live in time"}


@dataclass(frozen=True)
class Alert:
    """One alert about one run of a DAG.

    Attributes:
        kind: FAILED, REJECTED or LATE.
        dag_id: the DAG of the run.
        run_id: the run.
        run_date: the run's as-of date D (its data interval is the day before it); None when
            the run has none.
        models: the models concerned (the step's model, or those a shared step was building).
        step: the step id (the task id, `mf_als.gate`); None for a whole run (LATE).
        detail: the error, the gate's reason with its figures, or what was late.
        link: the run's (or the task's) page in the Airflow UI.
    """

    kind: str
    dag_id: str
    run_id: str
    run_date: date | None
    models: tuple[str, ...]
    step: str | None
    detail: str
    link: str

    def subject(self) -> str:
        """One line: `[recsys] recsys_nightly 2026-03-01 mf_als.gate: not published`."""
        where = " ".join(x for x in (self.dag_id, _day(self.run_date), self.step or ", ".join(self.models)) if x)
        return f"[recsys] {where}: {_HEADLINES[self.kind]}"

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the message body, in order."""
        return [("DAG", self.dag_id), ("as-of date", _day(self.run_date) or "none (a run without a logical date)"),
                ("model", ", ".join(self.models) or "none (a shared step)"), ("step", self.step or "the whole run"),
                ({FAILED: "error", REJECTED: "reason", LATE: "late"}[self.kind], self.detail),
                ("run", self.run_id), ("link", self.link)]

    def text(self) -> str:
        """Plain text (the Slack message): the subject, then one `label: value` line each."""
        return "\n".join([self.subject(), *(f"{label}: {value}" for label, value in self.lines())])

    def html(self) -> str:
        """The mail body: the same lines, escaped (a reason may hold `<` and `&`), the link clickable."""
        rows = "".join(f"<tr><th align=\"left\">{html.escape(label)}</th><td>{_cell(label, value)}</td></tr>"
                       for label, value in self.lines())
        return f"<p>{html.escape(self.subject())}</p><table>{rows}</table>"


def _cell(label: str, value: str) -> str:
    if label == "link":
        return f"<a href=\"{html.escape(value, quote=True)}\">{html.escape(value)}</a>"
    return f"<pre>{html.escape(value)}</pre>" if "\n" in value else html.escape(value)


def _day(run_date: date | None) -> str:
    return run_date.isoformat() if run_date is not None else ""


def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow 3 UI (the grid of that run), under `[api] base_url`."""
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def task_failed(dag_id: str, run_id: str, run_date: date | None, step: str, models: tuple[str, ...],
                error: str, link: str) -> Alert:
    """A task failed after its last retry (or at once, on bad input)."""
    return Alert(FAILED, dag_id, run_id, run_date, models, step, error, link)


def publish_rejected(dag_id: str, run_id: str, run_date: date | None, step: str, model: str, reason: str,
                     link: str) -> Alert:
    """The gate kept `model`'s new version out (figures, or the data-health hold): `reason` names the figures."""
    return Alert(REJECTED, dag_id, run_id, run_date, (model,), step, reason, link)


def lists_late(dag_id: str, run_id: str, run_date: date | None, live_by: str, zone: str, deadline: datetime,
               state: str, link: str) -> Alert:
    """The run was not done by its deadline, `live_by` (HH:MM) in `zone`; `state` is the run's state then."""
    detail = (f"lists not live by {live_by} {zone} (deadline {deadline.isoformat(timespec='minutes')}); "
              f"the run was {state} when the scheduler saw the deadline pass")
    return Alert(LATE, dag_id, run_id, run_date, (), None, detail, link)


def recipients(raw: str | tuple[str, ...]) -> list[str]:
    """Mail addresses from a comma-separated text (or a tuple of them), blanks dropped."""
    parts = raw.split(",") if isinstance(raw, str) else raw
    return [p.strip() for p in parts if p.strip()]
