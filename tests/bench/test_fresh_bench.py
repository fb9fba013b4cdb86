"""bench/fresh.py --quick end to end: it runs, and its SUMMARY line has every key, finite and in range."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"  # beside the checkout
KEYS = ("time_to_list_min", "hourly_s", "peak_rss_mb", "mind_auc_hybrid", "mind_auc_popularity")


def test_quick_run_summary_is_complete_and_finite():
    if not (SHARED_DATASETS / "mind-small-sample" / "behaviors.tsv").exists():
        pytest.skip(f"shared dataset missing: {SHARED_DATASETS / 'mind-small-sample'}")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "fresh.py"), "--quick"], capture_output=True,
                          text=True, timeout=600, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("SUMMARY ")]
    assert len(lines) == 1 and done.stdout.rstrip().endswith(lines[0]), done.stdout[-2000:]
    figures = dict(pair.split("=", 1) for pair in lines[0].split()[1:])
    assert tuple(figures) == KEYS
    values = {key: float(value) for key, value in figures.items()}
    assert all(math.isfinite(v) for v in values.values()), values
    # an item waits at most until its hour's end, plus the run
    assert 0.0 < values["time_to_list_min"] <= 60.0 + values["hourly_s"] / 60 + 1.0
    assert values["hourly_s"] > 0 and values["peak_rss_mb"] > 0
    assert 0.0 <= values["mind_auc_hybrid"] <= 1.0 and 0.0 <= values["mind_auc_popularity"] <= 1.0
    assert "--quick: 10,000 users x 200 new items" in done.stdout  # the smaller size is said
