"""recsys.ui.page: the whole page from a real database, self-contained and with every panel."""

from __future__ import annotations

import re

import pytest

from recsys.db import engine as db
from recsys.ui import page

from uidata import RUN_DATES, has_table


def _execute(settings, statement: str) -> None:
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(statement)


def _section(html: str, name: str) -> str:
    match = re.search(rf'<section class="panel" id="panel-{name}".*?</section>', html, re.S)
    assert match, f"panel {name} missing"
    return match.group(0)


def test_page_has_every_panel_with_its_data(ui_settings):
    html = page.render_page(ui_settings)
    assert html.startswith("<!doctype html>")
    live = _section(html, "live")
    last = RUN_DATES[-1].isoformat()
    assert f"mf_als@{last}" in live and f"{last} 01:00" in live
    runs = _section(html, "runs")
    assert runs.count("<tr>") == 1 + len(RUN_DATES) + 1
    assert 'class="status status-rejected"' in runs and 'class="status status-published"' in runs
    evals = _section(html, "eval")
    # 2 metrics x 2 subjects x the run dates
    assert evals.count("<svg") == 2 and evals.count('class="point"') == 2 * 2 * len(RUN_DATES)
    heat = _section(html, "retention")
    assert heat.count('class="cell mature"') > 0 and heat.count('class="cell immature"') > 0
    ope = _section(html, "ope")
    assert "no data yet" in ope  # migration 0004 creates ope_estimates; no estimates seeded
    if has_table(ui_settings, "model_retention"):
        by_model = _section(html, "model-retention")
        assert by_model.count("<svg") == 2 and by_model.count('class="band"') == 4
        assert by_model.count('class="point"') == 2 * 2 * 12  # D1, D7 x 2 models x 12 serve days


def test_page_needs_nothing_from_outside(ui_settings):
    html = page.render_page(ui_settings)
    assert "<script" not in html.lower()
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_model_retention_panel_says_no_data_without_its_table(ui_settings):
    _execute(ui_settings, "DROP TABLE IF EXISTS model_retention")
    panel = page.render_panel("model-retention", ui_settings)
    assert "No data yet" in panel and "<svg" not in panel


def test_empty_database_renders_notes_not_errors(settings):
    html = page.render_page(settings)
    for name in page.PANELS:
        assert f'id="panel-{name}"' in html
    assert "No model is live yet" in html and "No retention cells yet" in html


def test_data_health_panel_shows_the_newest_nights_checks_with_their_status(settings):
    assert "nightly health task has not run" in page.render_panel("health", settings)
    _execute(settings, "INSERT INTO data_health (run_date, check_name, value, baseline, threshold_low, threshold_high,"
                       " status, reason) VALUES"
                       " ('2026-01-14', 'volume', 950, 1000, 200, 5000, 'ok', 'events 950 within [200, 5000]'),"
                       " ('2026-01-15', 'volume', 180, 1000, 200, 5000, 'held', 'events 180 is below the threshold 200'),"
                       " ('2026-01-15', 'propensity_share', NULL, NULL, NULL, NULL, 'skipped', 'no propensity column')")
    panel = page.render_panel("health", settings)
    assert panel.count("<tr data-check=") == 3
    assert panel.index("2026-01-15") < panel.index("2026-01-14")  # newest night first
    assert 'class="status status-held"' in panel and 'class="status status-skipped"' in panel
    assert "Publishes on hold for 2026-01-15" in panel and "below the threshold 200" in panel
    _execute(settings, "DROP TABLE data_health")
    assert "(migration 0011) is not in this database" in page.render_panel("health", settings)


def test_unknown_panel_is_a_key_error(settings):
    with pytest.raises(KeyError):
        page.render_panel("nope", settings)


def test_recsys_ui_does_not_import_airflow():
    import subprocess
    import sys

    code = "import sys, recsys.ui.page; print('airflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_models_panel_lists_the_catalogue_with_each_live_version():
    from datetime import date, datetime, timezone

    from recsys import catalogue
    from recsys.ui.data import LiveModel

    live = [LiveModel("mf_bpr", "mf_bpr@2026-01-29", date(2026, 1, 29), datetime(2026, 1, 29, 3, tzinfo=timezone.utc),
                      "mf", {})]
    html = page.render_catalogue(live)
    assert html.count("<tr><td>") == len(catalogue.MODELS)
    assert "<code>mf_bpr@2026-01-29</code>" in html and html.count("not published yet") == len(catalogue.MODELS) - 1
    assert "off-policy estimate, then gate (no ranking gate)" in html  # the RL models


def test_runs_panel_shows_headline_figures_against_popularity_and_live_and_filters(ui_settings):
    """One line per version: NDCG@10 and recall@10 with their differences to popularity and to the
    live version on the same users, the gate's reason, every metric folded behind a click."""
    version = "mf_als@2026-03-08"
    _execute(ui_settings, "UPDATE model_runs SET metrics = '{\"ndcg@10\": 0.2, \"popularity_ndcg@10\": 0.15,"
                          " \"champion_ndcg@10\": 0.25, \"recall@10\": 0.3, \"holdout_users\": 812,"
                          " \"coverage@10\": 0.4, \"gate\": {\"accepted\": false, \"reason\": \"ndcg@10 0.2000 is"
                          f" worse than live\"}}}}' WHERE model_version = '{version}'")
    runs = page.render_panel("runs", ui_settings)
    row = re.search(rf"<tr><td>2026-03-08</td><td>mf_als</td>.*?</tr>", runs, re.S).group(0)
    assert '<td class="num">0.2000 (+0.0500, -0.0500)</td>' in row  # vs popularity, vs live
    assert '<td class="num">0.3000 (-, -)</td>' in row  # no popularity or live recall recorded
    assert "<td>rejected: ndcg@10 0.2000 is worse than live</td>" in row and '<td class="num">812</td>' in row
    assert "<details><summary>6 metrics</summary>" in row and "<code>coverage@10</code> 0.4" in row
    # the filter: one model, a date range
    only_bpr = page.render_panel("runs", ui_settings, {"model": "mf_bpr"})
    assert "mf_bpr@2026-03-08" in only_bpr and "mf_als@" not in only_bpr.split("</form>", 1)[1]
    ranged = page.render_panel("runs", ui_settings, {"model": "mf_als", "from": "2026-03-06", "to": "2026-03-07"})
    assert sorted(re.findall(r"<code>(mf_als@[0-9-]+)</code>", ranged)) == ["mf_als@2026-03-06", "mf_als@2026-03-07"]
    assert "No model run matches the filter." in page.render_panel("runs", ui_settings, {"from": "2030-01-01"})


def test_user_lookup_shows_the_users_recent_clicks_with_titles_and_never_impressions(ui_settings):
    _execute(ui_settings, "INSERT INTO items (item_id, title, topic) VALUES (7, 'Storm & floods', 'weather');"
                          "INSERT INTO interactions (event_time, user_id, item_id, event_type) VALUES"
                          " ('2026-01-30 08:15+00', 42, 7, 'click'), ('2026-01-30 08:14+00', 42, 8, 'impression'),"
                          " ('2026-01-29 21:00+00', 42, 9, 'consume'), ('2026-01-31 00:00+00', 43, 7, 'click')")
    lists = page.render_panel("lists", ui_settings, {"user": "42"})
    history = lists[lists.index("What 42 did lately"):]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td><code>(.*?)</code></td><td>(.*?)</td>", history)
    assert rows == [("2026-01-30 08:15", "click", "7", "Storm &amp; floods"), ("2026-01-29 21:00", "consume", "9", "")]
    assert "No event of user 4242 in the log." in page.render_panel("lists", ui_settings, {"user": "4242"})
    _execute(ui_settings, "ALTER TABLE interactions RENAME COLUMN event_type TO kind")
    assert "The log cannot be read: " in page.render_panel("lists", ui_settings, {"user": "42"})
