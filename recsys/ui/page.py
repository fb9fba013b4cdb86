"""The Recsys page: HTML panels around the SVG charts, one function per panel.

`PANELS` maps a panel name to its title and to a function from settings to
the panel's HTML (data read with `recsys.ui.data`, drawn with `recsys.ui.svg`).
`render_page` puts them together into one self-contained document: inline
CSS and SVG, no script, nothing fetched from anywhere.
"""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from typing import Any, Callable, Mapping, Sequence

from recsys import catalogue
from recsys.config import Settings
from recsys.ui import data, svg
from recsys.lookup import HistoryEvent, ListedItem, UnknownUserError
from recsys.ui.data import HealthCheckRow, HeatCell, ListOverview, LiveModel, ModelRunRow, Series, ServingAlias

CSS = """
body{font-family:system-ui,sans-serif;margin:16px;color:#212529;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:0 0 6px} h3{font-size:13px;margin:10px 0 4px}
.sub{color:#6c757d;font-size:12px;margin:0 0 8px}
.grid{display:flex;flex-wrap:wrap;gap:16px}
.panel{border:1px solid #dee2e6;border-radius:6px;padding:12px;margin:0 0 16px;max-width:1180px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0} figcaption{font-size:12px;color:#495057;margin:2px 0}
table{border-collapse:collapse;font-size:12px} th,td{padding:3px 8px;border-bottom:1px solid #e9ecef;text-align:left}
th{background:#f1f3f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{padding:1px 6px;border-radius:8px;font-size:11px;color:#fff}
.status-published{background:#2f9e44}.status-trained{background:#1f6fb4}.status-superseded{background:#868e96}
.status-rejected{background:#e67700}.status-failed{background:#c92a2a}
.status-ok{background:#2f9e44}.status-held{background:#c92a2a}.status-warned{background:#e67700}
.status-skipped{background:#868e96}
.empty-note{color:#495057;background:#f8f9fa;border:1px dashed #ced4da;padding:16px;border-radius:4px}
"""


def render_catalogue(live: Sequence[LiveModel]) -> str:
    """Every model of the catalogue (recsys.catalogue): what it is, how it is read out and gated,
    and its live version if it has one."""
    live_by_model = {m.model: m for m in live}
    rows = "".join(
        f"<tr><td>{escape(spec.name)}</td><td>{escape(spec.kind)}</td><td>{escape(spec.summary)}</td>"
        f"<td>{'hold-out, then gate' if spec.readout == 'holdout' else 'off-policy estimate, then gate'}"
        f"{'' if spec.ranking_gate else ' (no ranking gate)'}</td>"
        f"<td>{_live_cell(live_by_model.get(spec.name))}</td></tr>" for spec in catalogue.MODELS)
    return ("<table><thead><tr><th>model</th><th>kind</th><th>what it is</th><th>read out by</th>"
            f"<th>live version</th></tr></thead><tbody>{rows}</tbody></table>")


def _live_cell(live: LiveModel | None) -> str:
    return f"<code>{escape(live.model_version)}</code>" if live else "not published yet"


def render_live(live: Sequence[LiveModel], aliases: Sequence[ServingAlias] = (), k: int = 10) -> str:
    """Which model each serving alias serves and why, then the live version of each model
    and when it was published."""
    if not live:
        return _note("No model is live yet: nothing has been published.")
    said = "".join(
        f'<p><code>{escape(a.alias)}</code> serves <b>{escape(a.model)}</b> (chosen by the night of '
        f"{a.run_date.isoformat()}: {escape(a.reason or '')})</p>" for a in aliases)
    rows = "".join(
        f"<tr><td>{escape(m.model)}</td><td><code>{escape(m.model_version)}</code></td>"
        f"<td>{m.run_date.isoformat()}</td><td>{_ts(m.published_at)}</td><td>{escape(m.model_kind or '')}</td>"
        f"{_headline(m.metrics, 'ndcg', k)}{_headline(m.metrics, 'recall', k)}{_impressions(m.metrics)}"
        f"<td>{_all_metrics(m.metrics)}</td></tr>" for m in live)
    return (f"{said}<table><thead><tr><th>model</th><th>live version</th><th>as-of date</th><th>published at</th>"
            f"<th>kind</th><th>NDCG@{k} (vs pop, vs live)</th><th>recall@{k} (vs pop, vs live)</th>"
            "<th>per impression: AUC, MRR (vs pop)</th><th>all metrics</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def render_lists(overviews: Sequence[ListOverview], user: str | None = None,
                 lists: dict[str, list[ListedItem]] | None = None, refusal: str | None = None,
                 history: Sequence[HistoryEvent] | str | None = None) -> str:
    """A user look-up form (and that user's live lists and recent history, with titles), then per
    live model the items its lists hold most often: a handful of items in every list is a list for
    everyone."""
    form = ('<form method="get"><label>User (the log\'s id or key) '
            f'<input name="user" value="{escape(user or "")}" size="24"></label> '
            '<button type="submit">Show their lists</button></form>')
    parts = [form]
    if user:
        if refusal:
            parts.append(_note(refusal))
        elif not lists:
            parts.append(_note(f"No live list for user {user}."))
        for model, listed in (lists or {}).items():
            rows = "".join(
                f"<tr><td class=\"num\">{item.rank}</td><td><code>{escape(item.item_key)}</code></td>"
                f"<td>{escape(item.title or '')}</td><td>{escape(item.topic or '')}</td>"
                f"<td class=\"num\">{item.score:.4f}</td></tr>" for item in listed)
            parts.append(f"<h3>{escape(model)} for {escape(user)} <code>{escape(listed[0].model_version)}</code></h3>"
                         "<table><thead><tr><th>rank</th><th>item</th><th>title</th><th>topic</th><th>score</th>"
                         f"</tr></thead><tbody>{rows}</tbody></table>")
        if isinstance(history, str):
            parts.append(_note(history))
        elif history is not None and not refusal:
            parts.append(_render_history(user, history))
    if not overviews:
        parts.append(_note("No model is live yet: nothing has been published."))
    for overview in overviews:
        users = max(overview.users, 1)
        rows = "".join(
            f"<tr><td class=\"num\">{item.place}</td><td><code>{escape(item.item_key)}</code></td>"
            f"<td>{escape(item.title or '')}</td><td>{escape(item.topic or '')}</td>"
            f"<td class=\"num\">{item.lists:,} ({item.lists / users:.0%})</td></tr>" for item in overview.top)
        parts.append(
            f"<h3>{escape(overview.model)}: the most listed items</h3>"
            f'<p class="sub">{overview.users:,} users have a list; the lists hold {overview.distinct_items:,} '
            "distinct items.</p>"
            "<table><thead><tr><th>#</th><th>item</th><th>title</th><th>topic</th><th>in the lists of</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")
    return "".join(parts)


def _render_history(user: str, history: Sequence[HistoryEvent]) -> str:
    if not history:
        return _note(f"No event of user {user} in the log.")
    rows = "".join(
        f"<tr><td>{event.event_time:%Y-%m-%d %H:%M}</td><td>{escape(event.event_type)}</td>"
        f"<td><code>{escape(event.item_key)}</code></td><td>{escape(event.title or '')}</td>"
        f"<td>{escape(event.topic or '')}</td></tr>" for event in history)
    return (f"<h3>What {escape(user)} did lately</h3>"
            f'<p class="sub">Their {len(history)} newest clicks and consumptions in the log, newest first.</p>'
            "<table><thead><tr><th>when (UTC)</th><th>event</th><th>item</th><th>title</th><th>topic</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def _lists_panel(settings: Settings, query: Mapping[str, str]) -> str:
    user = (query.get("user") or "").strip() or None
    lists, refusal, history = None, None, None
    if user:
        try:
            lists = data.user_lists(settings, user, settings.k)
        except UnknownUserError as exc:
            refusal = str(exc)
        else:
            history = data.recent_history(settings, user)
    return render_lists(data.list_overview(settings), user, lists, refusal, history)


def render_runs(runs: Sequence[ModelRunRow], k: int = 10, model: str | None = None,
                date_from: date | None = None, date_to: date | None = None) -> str:
    """A filter (model, as-of dates) and the registry rows: status, the headline hold-out figures
    against popularity and against the live version, the gate's reason; every metric behind a click."""
    options = "".join(f'<option value="{escape(name)}"{" selected" if name == model else ""}>{escape(name)}</option>'
                      for name in catalogue.names())
    form = ('<form method="get"><label>Model <select name="model"><option value="">every model</option>'
            f'{options}</select></label> <label>as-of from <input name="from" type="date" '
            f'value="{date_from.isoformat() if date_from else ""}"></label> <label>to <input name="to" type="date" '
            f'value="{date_to.isoformat() if date_to else ""}"></label> <button type="submit">Filter</button></form>')
    if not runs:
        return form + _note("No model run recorded yet." if not (model or date_from or date_to)
                            else "No model run matches the filter.")
    rows = "".join(
        f'<tr><td>{r.run_date.isoformat()}</td><td>{escape(r.model)}</td><td><code>{escape(r.model_version)}</code>'
        f'</td><td><span class="status status-{escape(r.status)}">{escape(r.status)}</span></td>'
        f"{_headline(r.metrics, 'ndcg', k)}{_headline(r.metrics, 'recall', k)}"
        f'<td class="num">{_int(r.metrics.get("holdout_users"))}</td>'
        f"<td>{escape(_gate_reason(r.metrics))}</td>"
        f'<td class="num">{_int(r.n_interactions)}</td><td>{escape(r.triggered_by or "")}</td>'
        f"<td>{_ts(r.published_at)}</td><td>{_all_metrics(r.metrics)}</td></tr>" for r in runs)
    return (form + f"<table><thead><tr><th>as-of date</th><th>model</th><th>version</th><th>status</th>"
            f"<th>NDCG@{k} (vs pop, vs live)</th><th>recall@{k} (vs pop, vs live)</th><th>hold-out users</th>"
            "<th>gate</th><th>interactions</th><th>trigger</th><th>published at</th><th>all metrics</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _headline(metrics: dict[str, Any], metric: str, k: int) -> str:
    """One figure with its differences to popularity and to the live version on the same users."""
    value = metrics.get(f"{metric}@{k}")
    if not isinstance(value, (int, float)):
        return "<td></td>"
    diffs = [f"{value - other:+.4f}" if isinstance(other := metrics.get(f"{subject}_{metric}@{k}"), (int, float))
             else "-" for subject in ("popularity", "champion")]
    return f'<td class="num">{value:.4f} ({diffs[0]}, {diffs[1]})</td>'


def _impressions(metrics: dict[str, Any]) -> str:
    """MIND's AUC and MRR per hold-out impression (recsys.stages.evaluate), with the differences to
    popularity on the same impressions; empty for a log without impressions."""
    cells = []
    for name, label in (("impression_auc", "AUC"), ("impression_mrr", "MRR")):
        value = metrics.get(name)
        if not isinstance(value, (int, float)):
            continue
        other = metrics.get(f"popularity_{name}")
        diff = f"{value - other:+.4f}" if isinstance(other, (int, float)) else "-"
        cells.append(f"{label} {value:.4f} ({diff})")
    if not cells:
        return "<td></td>"
    return f'<td class="num">{", ".join(cells)}; {metrics.get("impressions", "?")} impressions</td>'


def _gate_reason(metrics: dict[str, Any]) -> str:
    gate = metrics.get("gate")
    if not isinstance(gate, dict):
        return ""
    return f"{'accepted' if gate.get('accepted') else 'rejected'}: {gate.get('reason', '')}"


def _all_metrics(metrics: dict[str, Any]) -> str:
    """Every numeric metric, folded: a click opens it (HTML details, no script)."""
    shown = {k: v for k, v in sorted(metrics.items()) if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not shown:
        return ""
    items = "".join(f"<li><code>{escape(k)}</code> {v:.4g}</li>" if isinstance(v, float)
                    else f"<li><code>{escape(k)}</code> {v}</li>" for k, v in shown.items())
    return f"<details><summary>{len(shown)} metrics</summary><ul>{items}</ul></details>"


def _runs_panel(settings: Settings, query: Mapping[str, str]) -> str:
    model = (query.get("model") or "").strip() or None
    date_from, date_to = _date(query.get("from")), _date(query.get("to"))
    return render_runs(data.model_runs(settings, model=model, date_from=date_from, date_to=date_to),
                       settings.k, model, date_from, date_to)


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if text and text.strip() else None
    except ValueError:
        return None  # a hand-typed date that does not parse filters nothing


def render_eval(by_model: dict[str, dict[str, list[Series]]], k: int) -> str:
    """Per model, NDCG@k and recall@k over as-of dates, the model against its baselines."""
    if not by_model:
        return _note(f"No hold-out metrics at K={k} yet.")
    names = {"ndcg": "NDCG", "recall": "Recall"}
    parts = []
    for model, by_metric in sorted(by_model.items()):
        charts = "".join(
            _figure(svg.line_chart(series, title=f"{model}: {names.get(m, m)}@{k}", width=520, height=220),
                    f"{model}: {names.get(m, m)}@{k} (solid: model, dashed: baselines)")
            for m, series in by_metric.items())
        parts.append(f'<div class="charts" data-model="{escape(model)}">{charts}</div>')
    return "".join(parts)


def render_heatmap(cells: Sequence[HeatCell]) -> str:
    """The classic cohort retention heat map."""
    if not cells:
        return _note("No retention cells yet: the nightly retention task has not run.")
    return _figure(svg.heatmap(cells, title="Classic N-day retention by cohort"),
                   "Share of each cohort (users by day of first activity) active on exactly day N. "
                   "Hatched: day N not observed yet (immature), not zero.")


def render_model_retention(by_n: dict[int, list[Series]] | None) -> str:
    """D1/D7 retention of the users each model served, with Wilson 95% bands."""
    if by_n is None:
        return _note("No data yet: per-model retention (table model_retention) is not in this database's schema.")
    if not any(s.points for series in by_n.values() for s in series):
        return _note("No data yet: no mature per-model retention cell.")
    return '<div class="charts">' + "".join(
        _figure(svg.line_chart(series, title=f"D{n} retention by serving model", percent=True,
                               width=520, height=240),
                f"D{n}: share of users served on a day who are active on exactly day +{n}; band: Wilson 95% interval")
        for n, series in sorted(by_n.items())) + "</div>"


def render_ope(series: list[Series]) -> str:
    """OPE estimate of each policy's return rate against the realised rate."""
    return _figure(svg.line_chart(series, title="OPE: predicted vs realised return rate", percent=True),
                   "Solid: OPE estimate with its interval; dashed: realised rate of the arm that served the policy")


def render_health(rows: Sequence[HealthCheckRow] | None) -> str:
    """The newest nights' data-health checks: figure, baseline, bounds, status and why."""
    if rows is None:
        return _note("No data yet: data_health (migration 0011) is not in this database's schema.")
    if not rows:
        return _note("No data-health check recorded yet: the nightly health task has not run.")

    def num(x: float | None) -> str:
        return "" if x is None else f"{x:,.0f}" if abs(x) >= 100 else f"{x:.4g}"

    held = sorted({r.run_date for r in rows if r.status == "held"}, reverse=True)
    summary = (_note("Publishes on hold for " + ", ".join(d.isoformat() for d in held) + ": see the held checks.")
               if held else "")
    body = "".join(
        f'<tr data-check="{escape(r.check_name)}"><td>{r.run_date.isoformat()}</td><td>{escape(r.check_name)}</td>'
        f'<td class="num">{num(r.value)}</td><td class="num">{num(r.baseline)}</td>'
        f'<td class="num">{num(r.threshold_low)}</td><td class="num">{num(r.threshold_high)}</td>'
        f'<td><span class="status status-{escape(r.status)}">{escape(r.status)}</span></td>'
        f'<td>{escape(r.reason)}</td></tr>' for r in rows)
    return (f"{summary}<table><thead><tr><th>as-of date</th><th>check</th><th>value</th><th>median before</th>"
            "<th>low bound</th><th>high bound</th><th>status</th><th>reason</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


#: name -> (title, subtitle, html of the panel for some settings and the query string's parameters)
PANELS: dict[str, tuple[str, str, Callable[[Settings, Mapping[str, str]], str]]] = {
    "models": ("Models", "The model catalogue (recsys/catalogue.py): each model the night can train.",
               lambda s, q: render_catalogue(data.live_models(s))),
    "live": ("Live models", "The version serving reads for each model (live_models), and the model each "
             "serving alias serves (serving_aliases).",
             lambda s, q: render_live(data.live_models(s), data.serving_aliases(s), s.k)),
    "lists": ("Live lists", "What serving returns now (live_recommendations), with the catalogue's titles: "
              "one user's lists, and the items each model lists most often.", _lists_panel),
    "runs": ("Model runs", "The newest 50 rows of the registry (model_runs), headline hold-out figures against "
             "popularity and the live version; filter by model and as-of dates.",
             _runs_panel),
    "health": ("Data health", "The newest 7 nights' checks of the input (data_health): a held check puts the "
               "night's publishes on hold.", lambda s, q: render_health(data.data_health(s))),
    "eval": ("Hold-out NDCG@10 and recall@10", "Per model over as-of dates: the model against the popularity "
             "baseline on the window's last day (eval_metrics).",
             lambda s, q: render_eval(data.eval_series(s, k=10), 10)),
    "retention": ("Cohort retention", "retention, kind 'classic', newest 30 cohorts.",
                  lambda s, q: render_heatmap(data.retention_heatmap(s))),
    "model-retention": ("Retention by model", "D1 and D7 retention of the users each model served (model_retention).",
                        lambda s, q: render_model_retention(data.model_retention(s))),
    "ope": ("OPE: predicted vs realised", "Off-policy estimates checked against what happened.",
            lambda s, q: render_ope(data.ope_series(s))),
}


def render_panel(name: str, settings: Settings, query: Mapping[str, str] | None = None) -> str:
    """One `<section>` of the page; `query` holds the request's parameters (`user` for the
    live lists). Raises KeyError for an unknown panel name."""
    title, subtitle, body = PANELS[name]
    return (f'<section class="panel" id="panel-{name}" data-panel="{name}"><h2>{escape(title)}</h2>'
            f'<p class="sub">{escape(subtitle)}</p>{body(settings, query or {})}</section>')


def render_page(settings: Settings, generated_at: datetime | None = None,
                query: Mapping[str, str] | None = None) -> str:
    """The whole page as one HTML document."""
    stamp = f" Generated {generated_at:%Y-%m-%d %H:%M:%S %Z}." if generated_at else ""
    sections = "".join(render_panel(name, settings, query) for name in PANELS)
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Recsys</title>"
            f"<style>{CSS}</style></head><body><h1>Recsys</h1>"
            f'<p class="sub">Schema <code>{escape(settings.schema)}</code> of the data database.{stamp}</p>'
            f"{sections}</body></html>")


def _figure(svg_text: str, caption: str) -> str:
    return f"<figure>{svg_text}<figcaption>{escape(caption)}</figcaption></figure>"


def _note(text: str) -> str:
    return f'<div class="empty-note">{escape(text)}</div>'


def _ts(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return escape(value.strftime("%Y-%m-%d %H:%M %Z").strip())
    return value.isoformat()


def _int(value: int | None) -> str:
    return "" if value is None else f"{value:,}"
