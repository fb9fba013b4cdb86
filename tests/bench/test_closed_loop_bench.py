"""bench/closed_loop.py: the claim across seeds, and a seed's table reproducible whatever the
process's thread count or CPU affinity (real runs of the closed loop, on the real database)."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "closed_loop.py"


@pytest.fixture(scope="module")
def closed_loop():
    spec = importlib.util.spec_from_file_location("bench_closed_loop", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_claim_is_the_mean_difference_over_seeds_with_a_t_interval(closed_loop):
    mean, low, high = closed_loop.across_seeds([0.01, 0.03, 0.02])
    # sd 0.01 over 3 seeds, t(0.975, 2 df) = 4.3027
    assert mean == pytest.approx(0.02) and high - mean == pytest.approx(4.302653 * 0.01 / 3 ** 0.5, rel=1e-5)
    assert low == pytest.approx(2 * mean - high)
    assert all(math.isnan(bound) for bound in closed_loop.across_seeds([0.05])[1:])  # one seed: no interval


def _run(tmp_path: Path, name: str, cpus: set[int], threads: str) -> dict:
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    subprocess.run([sys.executable, str(BENCH), "--seeds", "3", "--days", "3", "--users", "150", "--items", "50",
                    "--rl-epochs", "1", "--json", str(out)], check=True, env=env, timeout=600,
                   preexec_fn=lambda: os.sched_setaffinity(0, cpus), stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    for seed in result["results"]:
        seed.pop("seconds")
    return result


@pytest.mark.slow
def test_a_seed_gives_the_same_table_on_one_cpu_with_one_thread_and_on_every_cpu_with_two(tmp_path):
    every = os.sched_getaffinity(0)
    one = _run(tmp_path, "one_cpu", {min(every)}, "1")
    two = _run(tmp_path, "every_cpu", every, "2")
    assert one["pinned"] and one["results"][0]["arms"]["rl_reinforce"]["d1"][4] > 0
    assert one == two
