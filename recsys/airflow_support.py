"""What the DAG files need at task run time: settings from the Airflow connection, the
one wrapper every nightly task runs through (which emits the "went live" asset events and
alerts on a rejected model), the failure callback, the alerts sent through Airflow's
notifiers (SMTP, Slack webhook) and the deadline's, and the body of the live-lists refresh.

Imported inside task bodies only (never when a DAG file is parsed), and Airflow
itself is imported inside the functions, so the rest of the package stays free
of Airflow: the CLI and the tests call the same stages without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from recsys import alerts, assets, catalogue
from recsys.config import AlertConfig, Settings
from recsys.errors import PERMANENT_ERRORS, SKIP_ERRORS, ConfigurationError, PublishRejected

logger = logging.getLogger(__name__)

CONNECTION_ID = "recsys_db"


def settings_for_task(**overrides: Any) -> Settings:
    """Settings from RECSYS_* variables; the `recsys_db` connection supplies the
    database URL when RECSYS_DATABASE_URL is unset."""
    if "RECSYS_DATABASE_URL" not in os.environ:
        from airflow.sdk import Connection

        uri = Connection.get(CONNECTION_ID).get_uri()
        overrides.setdefault("database_url", "postgresql+psycopg2://" + uri.split("://", 1)[1])
    return Settings.from_env(**overrides)


@contextmanager
def no_retry_on_bad_input() -> Iterator[None]:
    """Bad input, a missing schema or an unusable setting fails the task at once: retrying
    cannot fix it."""
    try:
        yield
    except PERMANENT_ERRORS as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{exc} (not retried: fix the input, then clear the task)") from exc


def _night_step(step_id: str):  # noqa: ANN202 - recsys.night.Step
    from recsys.night import night_steps

    return next(step for step in night_steps(catalogue.MODELS) if step.id == step_id)


def night_for_task(context: Any):  # noqa: ANN001, ANN201 - Airflow's Context -> recsys.pipeline.Night
    """The run's Night: settings (with the run's params), data interval, trigger and shard count."""
    from recsys.interval import DataInterval
    from recsys.pipeline import Night

    params = context["params"]
    backend = {"mf_backend": str(params["mf_backend"])} if params.get("mf_backend") else {}
    settings = settings_for_task(k=int(params["k"]), train_window_days=int(params["train_window_days"]), **backend)
    interval = DataInterval.from_airflow(context.get("data_interval_start"), context.get("data_interval_end"),
                                         context["dag_run"].run_after)
    return Night(settings, interval, triggered_by(context), force_publish=bool(params["force_publish"]),
                 score_shards=int(params["score_shards"]))


def triggered_by(context: Any) -> str:  # noqa: ANN001 - Airflow's Context
    run_type = context["dag_run"].run_type
    return getattr(run_type, "value", str(run_type))


def run_night_task(step_id: str, given: dict[str, Any]) -> Any:
    """Run one step of the night as an Airflow task: the body of every recsys_nightly task.

    `given` holds the task's arguments (upstream manifests by stage, `plan` for a mapped
    shard); the step takes the ones it reads. Steps of a model not in the run's `models`
    param are skipped; skip errors (an empty interval, a rejected model) become Airflow's
    skip, permanent errors fail at once without retries, and the step's manifest is
    returned as plain data for XCom. A publish whose lists went live, and a choose that
    moved the serving alias, add a "went live" event to the task's asset alias outlet
    (`recsys.assets`); any other outcome emits none.
    """
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    from recsys.night import input_key
    from recsys.pipeline import run_step

    context = get_current_context()
    step = _night_step(step_id)
    keys = [input_key(i) for i in step.inputs if not (step.mapped and input_key(i) == "gate")]
    inputs = {key: given[key] for key in keys} | ({"plan": given["plan"]} if step.mapped else {})
    if step.model is not None and step.model not in context["params"]["models"]:
        raise AirflowSkipException(f"{step.model} is not in this run's models")
    if (step.after or step.after_unless_failed) and any(inputs.get(key) is None for key in inputs):
        # all_done / none_failed: it runs after the models it waits for whatever their state (but
        # a failure, for none_failed), and needs its own inputs
        raise AirflowSkipException(f"{step.id}: an input step did not succeed this night")
    try:
        with no_retry_on_bad_input():
            night = night_for_task(context)
            outlet = _went_live_outlet(context, step, night.settings)
            result = run_step(step, night, inputs)
    except SKIP_ERRORS as exc:
        if isinstance(exc, PublishRejected):  # the gate's figures, or the data-health hold
            alert_rejection(context, step, str(exc))
        raise AirflowSkipException(str(exc)) from exc
    if outlet is not None:
        emit_went_live(context, outlet, step, night, result)
    return result


def _went_live_outlet(context: Any, step: Any, settings: Settings) -> tuple[str, str] | None:  # noqa: ANN401
    """(alias name, asset URI) of the step's "went live" events, or None for a step that moves no lists.

    Checked before the step runs: the DAG file declared its alias from RECSYS_SCHEMA and
    RECSYS_SERVING_ALIAS when it was parsed, and Airflow drops, without a word, an event added
    to an alias the task did not declare.

    Raises:
        ConfigurationError: the task's declared alias is another one (the DAG processor and
            the worker see different RECSYS_SCHEMA or RECSYS_SERVING_ALIAS).
    """
    from airflow.sdk import AssetAlias

    moved = assets.lists_moved_by(step.stage, step.model, settings.serving_alias)
    declared = sorted(o.name for o in context["task"].outlets if isinstance(o, AssetAlias))
    expected = assets.went_live_alias(settings.schema, moved) if moved else None
    if declared != ([expected] if expected else []):
        raise ConfigurationError(f"task {step.id} declares the asset aliases {declared} but its settings call for "
                                 f"{expected!r}: the DAG processor and the worker disagree on RECSYS_SCHEMA "
                                 f"({settings.schema!r} here) or RECSYS_SERVING_ALIAS ({settings.serving_alias!r})")
    return (expected, assets.live_uri(settings.schema, moved)) if moved else None


def emit_went_live(context: Any, outlet: tuple[str, str], step: Any, night: Any, result: Any) -> None:  # noqa: ANN401
    """Add the step's "went live" event to its alias outlet, when its manifest calls for one."""
    from airflow.sdk import Asset, AssetAlias

    extra = assets.went_live_extra(step.stage, step.model, night.interval.run_date, result)
    alias, uri = outlet
    if extra is None:
        logger.info("%s: no event on %s (its lists did not go live)", step.id, uri)
        return
    context["outlet_events"][AssetAlias(alias)].add(Asset(uri=uri), extra=extra)
    logger.info("%s: event on %s with %s", step.id, uri, extra)


def task_failed(context: Any) -> None:  # noqa: ANN401 - Airflow's Context
    """The nightly's on_failure_callback, run once the last retry has failed (at once on bad
    input): the registry says `failed`, and the alert goes out even when recording fails."""
    try:
        record_task_failure(context)
    finally:
        alert_task_failure(context)


def record_task_failure(context: Any) -> None:  # noqa: ANN001 - Airflow's Context
    """on_failure_callback, run once the last retry has failed: the registry row of each
    model the task was building says `failed`, with the task and the error."""
    from recsys.db.registry import record_failure
    from recsys.pipeline import models_built_by

    night = night_for_task(context)
    step = _night_step(context["ti"].task_id)
    for model in models_built_by(step, context["params"]["models"]):
        record_failure(night.settings, model, night.interval, step.id, context.get("exception") or "task failed",
                       night.triggered_by)


def _run_date(start: Any, end: Any, run_after: Any) -> Any:  # noqa: ANN401 - datetimes or ISO texts
    """The run's as-of date D (recsys.interval), or None for a run with neither interval nor run_after."""
    from datetime import datetime

    from recsys.interval import DataInterval

    start, end, run_after = (datetime.fromisoformat(x) if isinstance(x, str) else x for x in (start, end, run_after))
    if run_after is None and (start is None or end is None):
        return None
    return DataInterval.from_airflow(start, end, run_after).run_date


def alert_config() -> AlertConfig:
    """The alert settings (RECSYS_ALERT_SMTP_CONN, RECSYS_ALERT_SLACK_CONN, RECSYS_ALERT_EMAIL_TO,
    RECSYS_ALERT_EMAIL_FROM); no database URL is needed for them."""
    return Settings.from_env().alerts


def send_alert(alert: alerts.Alert, config: AlertConfig, context: Any = None) -> list[str]:  # noqa: ANN401
    """Send `alert` through Airflow's notifiers, by mail and to a Slack webhook, to each channel
    whose connection is defined; the channels it went out by.

    Never raises: an alert that cannot be sent must not fail the night nor hide the error it
    reports, so every failure to send is logged (with its traceback) and the caller goes on.
    With no channel set up nothing is sent, and one line in the task log says so.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    channels, absent = [], []
    for name, conn_id in (("mail", config.smtp_conn_id), ("Slack", config.slack_conn_id)):
        if not conn_id:
            continue
        try:
            Connection.get(conn_id)
        except AirflowNotFoundException:
            absent.append(conn_id)
            continue
        except Exception:  # noqa: BLE001 - a broken secrets backend must not fail the night either
            logger.exception("alert %r: the %s connection %r could not be read", alert.subject(), name, conn_id)
            continue
        channels.append((name, conn_id))
    recipients = alerts.recipients(config.email_to)
    if any(name == "mail" for name, _ in channels) and not recipients:
        logger.warning("alert %r: the connection %r is defined but RECSYS_ALERT_EMAIL_TO names no recipient: "
                       "no mail", alert.subject(), config.smtp_conn_id)
        channels = [c for c in channels if c[0] != "mail"]
    if not channels:
        logger.info("no alert sent, no alert channel is set up (connections %s not defined; "
                    "docs/operations.md#alerts): %s", ", ".join(map(repr, absent)) or "none named", alert.text())
        return []
    sent = []
    for name, conn_id in channels:
        try:
            _notify(name, conn_id, alert, config, recipients, context or {})
        except Exception:  # noqa: BLE001 - see the docstring: log and go on
            logger.exception("alert %r could not be sent by %s (connection %r)", alert.subject(), name, conn_id)
            continue
        sent.append(name)
        logger.info("alert %r sent by %s (connection %r)", alert.subject(), name, conn_id)
    return sent


def _notify(channel: str, conn_id: str, alert: alerts.Alert, config: AlertConfig, recipients: list[str],
            context: Any) -> None:  # noqa: ANN401
    # notify() rather than calling the notifier: calling it first renders the fields as Jinja
    # templates, and an error message or a reason may hold "{{" or "{%"
    if channel == "mail":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(to=recipients, from_email=config.email_from or None, subject=alert.subject(),
                     html_content=alert.html(), smtp_conn_id=conn_id).notify(context)
    else:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=alert.text()).notify(context)


def alert_task_failure(context: Any) -> list[str]:  # noqa: ANN401 - Airflow's Context
    """Alert that a nightly task failed after its last retry; the channels it went out by (never raises)."""
    from recsys.pipeline import models_built_by

    try:
        ti, dag_run = context["ti"], context["dag_run"]
        step = _night_step(ti.task_id)
        models = tuple(models_built_by(step, context["params"]["models"]))
        alert = alerts.task_failed(ti.dag_id, ti.run_id, _run_date(context.get("data_interval_start"),
                                                                    context.get("data_interval_end"),
                                                                    dag_run.run_after),
                                   ti.task_id, models, str(context.get("exception") or "task failed"), ti.log_url)
        return send_alert(alert, alert_config(), context)
    except Exception:  # noqa: BLE001 - the failure itself is what Airflow reports; this only logs
        logger.exception("the failure alert of %s could not be built", context.get("ti"))
        return []


def alert_rejection(context: Any, step: Any, reason: str) -> list[str]:  # noqa: ANN401
    """Alert that the gate kept `step.model`'s new version out (`reason` has the figures); never raises."""
    try:
        ti, dag_run = context["ti"], context["dag_run"]
        alert = alerts.publish_rejected(ti.dag_id, ti.run_id, _run_date(context.get("data_interval_start"),
                                                                         context.get("data_interval_end"),
                                                                         dag_run.run_after),
                                        step.id, step.model, reason, ti.log_url)
        return send_alert(alert, alert_config(), context)
    except Exception:  # noqa: BLE001 - the skip (and its reason) must go through whatever happens here
        logger.exception("the rejection alert of %s could not be built", step.id)
        return []


def alert_lists_late(context: dict[str, Any], live_by: str, zone: str) -> list[str]:
    """The Deadline Alert's callback: the run was not done by `live_by` in `zone`.

    `context` is what the scheduler hands a deadline callback: `dag_run` (the REST API's
    DAG run, as JSON) and `deadline` (`deadline_time`). A backfill's deadline is long past
    when its run is created: it is logged, not alerted.
    """
    from datetime import datetime

    from airflow.sdk.configuration import conf

    run, deadline = context["dag_run"], context["deadline"]
    due = deadline["deadline_time"]
    due = datetime.fromisoformat(due) if isinstance(due, str) else due
    if run.get("run_type") == "backfill":
        logger.info("%s %s missed its deadline %s: a backfill, no alert", run["dag_id"], run["dag_run_id"], due)
        return []
    alert = alerts.lists_late(run["dag_id"], run["dag_run_id"],
                              _run_date(run.get("data_interval_start"), run.get("data_interval_end"),
                                        run.get("run_after")),
                              live_by, zone, due, str(run.get("state")),
                              alerts.run_url(conf.get("api", "base_url", fallback="http://localhost:8080/"),
                                             run["dag_id"], run["dag_run_id"]))
    return send_alert(alert, alert_config(), context)


def refresh_live_lists(context: Any) -> dict[str, Any]:  # noqa: ANN401 - Airflow's Context
    """The body of recsys_live_lists_refresh: log the "went live" events that triggered the run,
    refresh live_lists_snapshot and check it against them (`recsys.stages.live_snapshot`).

    A run triggered by hand has no triggering events: it only refreshes.
    """
    from dataclasses import asdict

    from airflow.sdk import Asset

    from recsys.stages.live_snapshot import refresh_live_snapshot

    triggering = context.get("triggering_asset_events") or {}
    extras = []
    for asset in triggering:
        if not isinstance(asset, Asset):  # the events an alias carried are listed under their asset too
            continue
        for event in triggering[asset]:
            logger.info("triggered by %s (%s, run %s, task %s): %s", asset.uri, event.source_dag_id,
                        event.source_run_id, event.source_task_id, event.extra)
            extras.append(dict(event.extra))
    with no_retry_on_bad_input():
        snapshot = refresh_live_snapshot(settings_for_task(), extras)
    return {**asdict(snapshot), "events": extras}


def approval_ask(context: Any, step_id: str) -> dict[str, Any]:  # noqa: ANN401 - Airflow's Context
    """The first half of a model's approval task (dags/recsys_nightly.py): does its publish need a
    person's approval (`recsys.stages.approval`)? The step's manifest: with `needed` False the
    task returns it at once and publish proceeds; with `needed` True it holds the request, whose
    subject and body the task shows in the Required Actions before it waits.

    Raises:
        AirflowSkipException: the model is not in this run's models.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from recsys.stages.approval import approval_request, gate_reason, manifest_of

    step = _night_step(step_id)
    if step.model not in context["params"]["models"]:
        raise AirflowSkipException(f"{step.model} is not in this run's models")
    ti = context["ti"]
    version = ti.xcom_pull(task_ids=f"{step.model}.train")["model_version"]
    with no_retry_on_bad_input():
        night = night_for_task(context)
        request = approval_request(night.settings, version, gate_reason(ti.xcom_pull(task_ids=f"{step.model}.gate")),
                                   night.force_publish)
    if request is None:
        logger.info("%s: the publish of %s needs no approval (RECSYS_APPROVAL=%s)", step_id, version,
                    night.settings.approval)
    return manifest_of(request, version)


def approval_answered(context: Any, asked: dict[str, Any], answer: dict[str, Any], timed_out: bool) -> dict[str, Any]:  # noqa: ANN401
    """The second half: record the approver's answer (or the timeout) in model_runs and return the
    step's manifest; `asked` is what `approval_ask` returned, `answer` the HITL response.

    Raises:
        AirflowSkipException: rejected, or no answer in time: the publish is skipped, nothing goes live.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from recsys.stages.approval import APPROVED, REJECTED, TIMED_OUT, manifest_of, record_answer, request_from

    request = request_from(asked)
    chosen = list(answer.get("chosen_options") or [])
    user = answer.get("responded_by_user") or {}
    by = (user.get("name") or user.get("id")) if isinstance(user, dict) else str(user) or None
    outcome = TIMED_OUT if timed_out else APPROVED if chosen == ["Approve"] else REJECTED
    try:
        with no_retry_on_bad_input():
            record_answer(settings_for_task(), request, outcome, by=by)
    except SKIP_ERRORS as exc:
        raise AirflowSkipException(str(exc)) from exc
    return manifest_of(request, request.model_version, outcome, by)


def run_fresh_task(context: Any) -> dict[str, Any]:  # noqa: ANN401 - Airflow's Context
    """The body of recsys_fresh_items' task: merge the data interval's new items into the live
    lists of the `model` param (recsys.stages.fresh); nothing new, or no such model live, is a skip.

    When the lists went live, an event on recsys://<schema>/live/<model> goes out through the
    alias the task declared when the DAG was parsed (for the default model); a `model` param
    whose alias was not declared gets no event, and the log says so.
    """
    import dataclasses
    from datetime import date

    from airflow.sdk import Asset, AssetAlias
    from airflow.sdk.exceptions import AirflowSkipException

    from recsys.stages.fresh import run_fresh_hour

    params = context["params"]
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    try:
        with no_retry_on_bad_input():
            settings = settings_for_task(k=int(params["k"]))
            manifest = run_fresh_hour(settings, start, end, model=str(params["model"]))
    except SKIP_ERRORS as exc:
        raise AirflowSkipException(str(exc)) from exc
    result = dataclasses.asdict(manifest)
    extra = assets.went_live_extra("fresh", manifest.model, date.fromisoformat(manifest.run_date), result)
    alias, uri = assets.went_live_alias(settings.schema, manifest.model), assets.live_uri(settings.schema, manifest.model)
    declared = {o.name for o in context["task"].outlets if isinstance(o, AssetAlias)}
    if extra is None:
        logger.info("no event on %s (the hour's lists did not go live)", uri)
    elif alias not in declared:
        logger.warning("no event on %s: the task declares %s, not %s (another model or RECSYS_SCHEMA than when "
                       "the DAG was parsed)", uri, sorted(declared), alias)
    else:
        context["outlet_events"][AssetAlias(alias)].add(Asset(uri=uri), extra=extra)
        logger.info("event on %s with %s", uri, extra)
    return result
