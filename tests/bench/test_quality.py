"""bench/quality.py's report: the table and the SUMMARY counts from a tiny hand-made result (no database)."""

import importlib.util
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("bench_quality", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def _result(q, label, winner, figures, learned_ndcg, records=(), format_check=False):
    n = len(learned_ndcg)
    popular = np.full(n, 0.1)
    models = [q.ModelResult("mf_als", "mf", "live", np.asarray(learned_ndcg), np.asarray(learned_ndcg) / 2,
                            stored_ndcg=float(np.mean(learned_ndcg))),
              q.ModelResult("baseline_popular", "baseline", "live", popular, popular),
              q.ModelResult("baseline_trending", "baseline", "live", popular - 0.05, popular - 0.05),
              q.ModelResult("ease", "item_item", "failed", note="ConfigurationError: too many items")]
    return q.DataSetResult(label.lower(), label, format_check, "last_day", [date(2020, 1, 1), date(2020, 1, 2)],
                           models, list(records), winner, {m: {"figure": f} for m, f in figures.items()})


def test_summary_counts_and_table(quality):
    q = quality
    night = date(2020, 1, 2)
    beats = _result(q, "A", "mf_als", {"mf_als": 0.3, "baseline_popular": 0.1}, np.full(50, 0.3), records=[
        q.NightRecord(night, "mf_als", True, False, 0.30, 0.31),      # worse, within the tolerance
        q.NightRecord(night, "baseline_popular", True, False, 0.1, 0.1),  # equal: not worse
        q.NightRecord(night, "ease", False, False, 0.05, 0.2),        # rejected: not published
        q.NightRecord(night, "baseline_trending", True, True, 0.0, 0.2),  # forced: not counted
    ])
    # a learned model no better than popularity, and a winner below the best baseline (a broken choice)
    level = _result(q, "B", "mf_als", {"mf_als": 0.09, "baseline_popular": 0.1},
                    np.r_[np.full(25, 0.0), np.full(25, 0.2)], records=[
                        q.NightRecord(night, "mf_als", True, False, 0.2, 0.3)])  # worse beyond the tolerance
    taobao = _result(q, "T", "baseline_popular", {"baseline_popular": 0.0}, np.zeros(5), format_check=True,
                     records=[q.NightRecord(night, "mf_als", True, False, 0.0, 0.5)])
    report = q.build_report([beats, level, taobao], tolerance=0.05)
    assert report.summary == {"datasets": 2, "winner_ge_best_baseline": 1, "learned_beats_baselines": 1,
                              "worse_published": 2, "nights": 4, "gate_compared": 3, "worse_within_tolerance": 1}
    line = q.summary_line(report.summary)
    assert line.startswith("SUMMARY datasets=2 winner_ge_best_baseline=1 learned_beats_baselines=1 worse_published=2 ")
    assert report.per_dataset["A"]["learned_beating_baselines"] == ["mf_als"]
    assert report.per_dataset["T"]["worse_published"]  # shown for the format check, not counted

    table = q.table_markdown(report)
    lines = table.splitlines()
    assert len(lines) == 2 + 3 * 4 and all(line.count("|") == lines[0].count("|") for line in lines)
    row = next(r for r in report.rows if r.dataset == "A" and r.model == "mf_als")
    assert row.winner and row.beats_baselines and row.users == 50
    assert row.diff["baseline_popular"][:2] == (pytest.approx(0.2), pytest.approx(0.2))  # no spread: [0.2, 0.2]
    assert "**mf_als** (served)" in table and "failed (ConfigurationError: too many items)" in table


def test_bootstrap_interval_covers_the_mean_and_is_seeded(quality):
    values = np.random.default_rng(3).normal(1.0, 1.0, size=400)
    low, high = quality.bootstrap_interval(values)
    assert low < values.mean() < high and high - low == pytest.approx(2 * 1.96 / 20, rel=0.15)
    assert quality.bootstrap_interval(values) == (low, high)
    assert all(np.isnan(quality.bootstrap_interval(np.empty(0))))


def test_a_run_replaces_only_the_generated_part_of_the_page(quality):
    page = f"# Quality\n\nwritten by hand\n\n{quality.BEGIN}\nold table\n{quality.END}\n\nmore by hand\n"
    new = quality.with_generated(page, "new table")
    assert new == f"# Quality\n\nwritten by hand\n\n{quality.BEGIN}\nnew table\n{quality.END}\n\nmore by hand\n"
    assert quality.with_generated(new, "new table") == new
    assert quality.with_generated("", "t") == f"{quality.BEGIN}\nt\n{quality.END}\n"
