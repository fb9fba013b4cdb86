"""Closed-loop benchmark: does the RL recommender beat MF on retention?

For each seed: a fresh database, `days` simulated days of the closed loop
(recsys.sim.closed_loop) with arms random, popularity, mf_als, rl_reinforce and rl_cql,
each day followed by the nightly pipeline (MF and RL retrained and published every night;
the MF gate is overridden so both model arms serve their newest model). Printed per arm:

* D1 / D7 retention: units are (user, serve day) for users the arm served on days
  1 .. days-1-N (day 0 is served before any model exists); retained = active on
  exactly serve day + N. Wilson 95% intervals. Units of one user are correlated, so
  the intervals and the two-proportion p-value are optimistic (as in recsys.metrics.ab);
  the script also prints the p-value with each user's units as one cluster.
* click rate per impression (Wilson 95%), mean quality of consumed items (normal 95%).
* OPE error of the REINFORCE policy's D1 return rate: the DR (and IPS, SNIPS) estimate
  from the logged sessions of every arm (recsys.metrics.off_policy.evaluate_list_policy) against the
  truth obtained by rolling the RL policy out on a copy of the simulated population
  each day (mean true return probability of the day's users had RL served them all).

`--quick` runs one seed, 14 days and 1,500 users (a few minutes on 2 cores) and ends with
`SUMMARY rl_d7=<..> mf_d7=<..> p_value=<..> ope_rel_error=<..>`; p_value is the
two-proportion z-test (two-sided) of the RL arm's D7 retention against MF's.
`--stress` uses a second world: stronger clickbait and satisfaction-driven churn
(`--world stress`).

Reproducible across machines of one kind: each seed runs in a process of its own with every
numerical library pinned before it loads (one thread for torch, OpenMP, MKL and OpenBLAS;
MKL's conditional numerical reproducibility `MKL_CBWR`, torch's and oneDNN's kernels and
OpenBLAS's core type fixed at AVX2; torch's deterministic algorithms), so a seed gives the
same table whatever the machine's core count, CPU affinity or `OMP_NUM_THREADS`
(`--no-pin` turns it off, to see the difference). `--jobs N` runs N seeds at once instead.
A closed loop amplifies the last digits of float sums, which is why one seed on one CPU is
not a result: `--sweep` runs 10 seeds at the quick size and the claim is the mean RL - MF
D7 difference over seeds with its 95% t-interval (`SUMMARY ... rl_minus_mf_d7=<mean>
ci_low=<..> ci_high=<..> seeds=<n>`). `--world flat_consume` is a boundary check: there a clicked item is
consumed with the same probability whatever its quality, so the log's consumption and
abandonment say nothing about quality and only the retention term of the RL reward can.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_database  # noqa: E402

ARMS = ("random", "popularity", "mf_als", "rl_reinforce", "rl_cql")
START = date(2026, 1, 1)
STRESS = dict(appeal_quality_corr=-0.85, churn_satisfaction=0.12, boredom=0.08)
# the default world's mean consumption probability (0.2 + 0.7 x mean quality 0.5), whatever the quality
FLAT_CONSUME = dict(consume_base=0.55, consume_quality=0.0)
WORLDS = {"default": {}, "stress": STRESS, "flat_consume": FLAT_CONSUME}
# Set before torch / numpy load in each seed's process. Thread counts change the order of
# float sums; the ISA pins stop MKL, oneDNN, ATen and OpenBLAS from picking other kernels on
# another CPU model (AVX2: what every x86 server of the last decade runs).
PINNED_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_CBWR": "AVX2,STRICT", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
              "OPENBLAS_CORETYPE": "Haswell", "MKL_DYNAMIC": "FALSE"}


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    if min(n1, n2) == 0:
        return float("nan")
    pool = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    return 1.0 if se == 0 else math.erfc(abs(k1 / n1 - k2 / n2) / se / math.sqrt(2))


def clustered_rate(retained: np.ndarray, units: np.ndarray) -> tuple[float, float]:
    """(rate, standard error) of sum(retained) / sum(units) with each user's units as one
    cluster (the ratio estimator's sandwich variance, with the G / (G - 1) correction):
    a user's serve days share their satisfaction, so they are not independent units."""
    total, groups = units.sum(), len(units)
    if total == 0 or groups < 2:
        return float("nan"), float("nan")
    rate = retained.sum() / total
    return rate, math.sqrt(groups / (groups - 1) * np.sum((retained - rate * units) ** 2)) / total


def clustered_p(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Two-sided p of a difference of two independent clustered rates (rate, se)."""
    se = math.hypot(a[1], b[1])
    return float("nan") if not se > 0 else math.erfc(abs(a[0] - b[0]) / se / math.sqrt(2))


def rl_minus_mf(result: dict) -> float:
    return result["arms"]["rl_reinforce"]["d7"][0] - result["arms"]["mf_als"]["d7"][0]


def d7_p(result: dict, clustered: bool = False) -> float:
    """p of RL's D7 against MF's: the two-proportion test, or with users as clusters."""
    rl, mf = result["arms"]["rl_reinforce"], result["arms"]["mf_als"]
    if clustered:
        return clustered_p(rl["d7_clustered"], mf["d7_clustered"])
    return two_proportion_p(rl["d7"][3], rl["d7"][4], mf["d7"][3], mf["d7"][4])


def across_seeds(diffs: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-seed differences with its 95% t-interval over seeds
    (each seed a whole independent world, so seeds are the independent units)."""
    from scipy import stats

    values = np.asarray(diffs, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def _pinned_seed(args: tuple) -> dict:  # noqa: ANN001 - run_seed's arguments
    """run_seed in a process whose numerical libraries were pinned before they loaded."""
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return run_seed(*args)


def run_seeds(seed_args: list[tuple], jobs: int, pin: bool) -> Iterator[dict]:
    """run_seed for each argument tuple, each result as soon as it (and those before it) is done:
    in pinned worker processes (`jobs` at a time) unless `pin` is off and `jobs` is 1, which
    runs them here as the machine is set."""
    if not pin and jobs == 1:
        yield from (run_seed(*a) for a in seed_args)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    saved = dict(os.environ)
    os.environ.update(PINNED_ENV if pin else {})  # a spawned process inherits them before it imports anything
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield from pool.map(_pinned_seed if pin else _run_seed_tuple, seed_args)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_seed_tuple(args: tuple) -> dict:  # noqa: ANN001
    return run_seed(*args)


def run_seed(seed: int, days: int, users: int, items: int, explore: float, world_name: str, rl_epochs: int,
             threads: int = 0) -> dict:
    from recsys.config import Settings
    from recsys.interval import DataInterval
    from recsys.metrics.off_policy import SESSION_WEIGHTS, evaluate_list_policy
    from recsys.pipeline import run_night
    from recsys.sim.closed_loop import arm_of, fill_lists, read_live_lists, run_closed_loop
    from recsys.sim.world import World, WorldParams

    params = WorldParams(**WORLDS[world_name])
    with tempfile.TemporaryDirectory() as tmp, bench_database("recsys_bench_cl", Path(tmp)) as url:
        base = Settings.from_env()
        settings = dataclasses.replace(base, database_url=url, artifact_dir=Path(tmp) / "artifacts",
                                       train_window_days=days,
                                       rl=dataclasses.replace(base.rl, epochs=rl_epochs, num_threads=threads),
                                       # 0: the CPUs the process may use, which differ between machines
                                       als=dataclasses.replace(base.als, num_threads=threads),
                                       bpr=dataclasses.replace(base.bpr, num_threads=threads),
                                       ope=dataclasses.replace(base.ope, explore=explore))
        world = World(users, items, days, seed, params)
        active_by_day: list[np.ndarray] = []
        arm_by_day: list[np.ndarray] = []
        clicks, imps, quality = defaultdict(int), defaultdict(int), defaultdict(list)
        rl_lists: dict[int, np.ndarray] = {}
        truth: list[tuple[float, int]] = []
        logged = defaultdict(list)

        def before_day(day, w, server, active):  # noqa: ANN001 - hook
            lists, version = read_live_lists(settings, "rl_reinforce", active, params.slate_size)
            if version is None or not len(active):
                return
            lists = fill_lists(lists, server.popularity_list())
            rl_lists[day] = lists
            copy = w.copy()
            slates, _ = server.explored_slates(lists, np.random.default_rng([seed, 99, day]))
            out = copy.step(day, active, slates)
            pos = np.searchsorted(out.in_system, active)
            truth.append((float(out.return_prob[pos].mean()), len(active)))

        def on_day(day, w, outcome, propensity, versions):  # noqa: ANN001 - hook
            arm = arm_of(outcome.users, len(ARMS))
            active_by_day.append(outcome.users.copy())
            arm_by_day.append(arm)
            for a, name in enumerate(ARMS):
                rows = arm == a
                if day >= 1:
                    clicks[name] += int(outcome.click[rows].sum())
                    imps[name] += int(outcome.click[rows].size)
                    quality[name].extend(w.quality[outcome.slate[rows][outcome.consume[rows]]].tolist())
            if day in rl_lists:
                n, k = outcome.slate.shape
                came_back = w.returns_next[outcome.users].astype(float)
                logged["user"].append(np.repeat(outcome.users, k))
                logged["item"].append(outcome.slate.ravel())
                logged["session"].append(np.repeat(day * 10_000_000 + outcome.users, k))
                logged["propensity"].append(propensity.ravel())
                logged["click"].append(outcome.click.ravel().astype(float))
                logged["returned"].append(np.repeat(came_back, k))
                logged["list_users"].append(day * 10_000_000 + outcome.users)
                logged["lists"].append(rl_lists[day])

        def nightly(run_date):  # noqa: ANN001 - hook
            return run_night(settings, DataInterval.for_date(run_date), triggered_by="bench",
                             extra_models=("rl_reinforce", "rl_cql"), force_publish=True)

        started = time.perf_counter()
        run_closed_loop(settings, days, users, items, seed, START, params, ARMS, explore, nightly, world,
                        on_day, before_day)
        seconds = time.perf_counter() - started

    result = {"seed": seed, "seconds": seconds, "arms": {}}
    active_sets = [set(a.tolist()) for a in active_by_day]
    for a, name in enumerate(ARMS):
        row = {}
        for n_days in (1, 7):
            n = k = 0
            per_user = defaultdict(lambda: [0, 0])  # user -> [retained units, units]
            for d in range(1, days - n_days):
                served = active_by_day[d][arm_by_day[d] == a]
                n += len(served)
                for u in served.tolist():
                    back = u in active_sets[d + n_days]
                    k += back
                    per_user[u][0] += back
                    per_user[u][1] += 1
            row[f"d{n_days}"] = (k / n if n else float("nan"), *wilson(k, n), k, n)
            counts = np.array(list(per_user.values()), dtype=np.float64).reshape(-1, 2)
            row[f"d{n_days}_clustered"] = clustered_rate(counts[:, 0], counts[:, 1])
        row["ctr"] = (clicks[name] / max(imps[name], 1), *wilson(clicks[name], imps[name]))
        q = np.array(quality[name])
        half = 1.96 * q.std(ddof=1) / math.sqrt(len(q)) if len(q) > 1 else float("nan")
        row["quality"] = (float(q.mean()) if len(q) else float("nan"), q.mean() - half, q.mean() + half)
        result["arms"][name] = row

    if logged:
        # session ids are day-offset users, so the session's "user" for the target list is that id
        cat = {key: np.concatenate(v) for key, v in logged.items()}
        order = np.argsort(cat["list_users"])
        true_rate = sum(t * n for t, n in truth) / sum(n for _, n in truth)
        # the configured session weight first (its DR error is the SUMMARY's), then the other for comparison
        weights = sorted(SESSION_WEIGHTS, key=lambda w: w != settings.ope.session_weight)
        result["ope"] = {"truth": true_rate, "session_weights": weights}
        for weight in weights:
            est = evaluate_list_policy(cat["session"], cat["item"], cat["session"], cat["propensity"], cat["click"],
                                       cat["returned"], cat["list_users"][order], cat["lists"][order], items,
                                       explore, settings.ope.weight_cap, 200, seed, weight)["return"]
            result["ope"][weight] = {name: (e.value, e.ci_low, e.ci_high, abs(e.value - true_rate) / true_rate,
                                            e.ess, e.n) for name, e in est.items()}
    return result


def world_only(seed: int, days: int, users: int, items: int, explore: float, world_name: str) -> dict:
    """D1/D7 of fixed policies on the world alone (no database, no learning): how much
    retention the world lets a policy gain. `click` ranks by true click probability,
    `quality` by item quality, `oracle` by click probability x quality, `reward` by the
    expected immediate reward of the RL reward as configured (RECSYS_RL_CONSUME_WEIGHT,
    RECSYS_RL_ABANDON_PENALTY) under the true click and consumption probabilities: what
    a policy that learned that reward perfectly would reach."""
    from recsys.config import Settings
    from recsys.sim.closed_loop import ArmServer
    from recsys.sim.world import World, WorldParams

    params = WorldParams(**WORLDS[world_name])
    reward = Settings.from_env().rl
    out = {}
    for policy in ("random", "click", "quality", "oracle", "reward"):
        w, server = World(users, items, days, seed, params), ArmServer(items, params.slate_size, explore, seed)
        active = []
        for d in range(days):
            a = w.active_users(d)
            active.append(set(a.tolist()))
            rng = np.random.default_rng([seed, 9, d])
            if policy == "random":
                slate, _ = server.random_slates(len(a), rng)
            else:
                p_click = w.appeal[None, :] * (params.click_floor + (1 - params.click_floor) * w.affinity[a][:, w.topic])
                p_consume = params.consume_base + params.consume_quality * w.quality[None, :]
                score = {"click": p_click, "quality": np.broadcast_to(w.quality, p_click.shape),
                         "oracle": p_click * w.quality[None, :],
                         "reward": p_click * (1 + reward.consume_weight * p_consume
                                              - reward.abandon_penalty * (1 - p_consume))}[policy]
                slate, _ = server.explored_slates(np.argsort(-score, axis=1)[:, :params.slate_size], rng)
            w.step(d, a, slate)
        out[policy] = {n: sum(len(active[d] & active[d + n]) for d in range(1, days - n))
                       / max(sum(len(active[d]) for d in range(1, days - n)), 1) for n in (1, 7)}
    return out


def print_result(result: dict) -> None:
    print(f"\nseed {result['seed']} ({result['seconds']:.0f} s)")
    print(f"{'arm':<14} {'D1 retention [95% CI]':<26} {'D7 retention [95% CI]':<26} {'click rate [95% CI]':<26} "
          f"{'consumed quality [95% CI]':<26} {'units D1/D7'}")
    for name, row in result["arms"].items():
        cells = [f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" for v in (row["d1"], row["d7"], row["ctr"], row["quality"])]
        print(f"{name:<14} " + " ".join(f"{c:<26}" for c in cells) + f" {row['d1'][4]}/{row['d7'][4]}")
    if "ope" in result:
        ope = result["ope"]
        print(f"OPE of rl_reinforce's D1 return rate, truth by roll-out {ope['truth']:.4f}:")
        for weight in ope["session_weights"]:
            for name in ("ips", "snips", "dr"):
                v, lo, hi, err, ess, n = ope[weight][name]
                print(f"  {name:<6} {v:.4f} [{lo:.4f}, {hi:.4f}]  relative error {err:.3f}  ESS {ess:.0f} of {n}"
                      f"  (session weight {weight})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed, 14 days, 1,500 users")
    parser.add_argument("--stress", action="store_true", help="the second world (stronger clickbait and churn)")
    parser.add_argument("--world", choices=sorted(WORLDS), default=None,
                        help="the world's parameter set (default: 'default', or 'stress' with --stress)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--explore", type=float, default=0.1)
    parser.add_argument("--rl-epochs", type=int, default=4)
    parser.add_argument("--world-only", action="store_true",
                        help="fixed policies on the world alone: the retention headroom (no database)")
    parser.add_argument("--sweep", action="store_true",
                        help="10 seeds at the quick size (14 days, 1,500 users): the claim across seeds")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once, each in a process of its own")
    parser.add_argument("--no-pin", action="store_true",
                        help="run with the machine's thread counts and kernels (not reproducible across machines)")
    parser.add_argument("--json", type=Path, default=None, help="also write every seed's result here")
    args = parser.parse_args(argv)
    if args.world is not None and args.stress and args.world != "stress":
        parser.error("--stress and --world name different worlds")
    world_name = args.world or ("stress" if args.stress else "default")
    if args.world_only:
        for seed in args.seeds:
            for policy, rates in world_only(seed, args.days, args.users, args.items, args.explore, world_name).items():
                print(f"seed {seed} {policy:<8} D1 {rates[1]:.3f} D7 {rates[7]:.3f}")
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.quick or args.sweep:
        args.days, args.users, args.rl_epochs = 14, 1500, 3
        args.seeds = list(range(1, 11)) if args.sweep else args.seeds[:1]
    pin = not args.no_pin
    threads = 1 if pin else 0
    started = time.perf_counter()
    results = []
    for result in run_seeds([(seed, args.days, args.users, args.items, args.explore, world_name, args.rl_epochs,
                              threads) for seed in args.seeds], max(1, args.jobs), pin):
        results.append(result)
        print_result(result)
        sys.stdout.flush()
        if args.json:  # after every seed: a long sweep that is stopped keeps what it ran
            args.json.write_text(json.dumps({"world": world_name, "pinned": pin, "results": results}, indent=1,
                                            default=float))
    last = results[-1]
    rl, mf = last["arms"]["rl_reinforce"]["d7"], last["arms"]["mf_als"]["d7"]
    p_value = two_proportion_p(rl[3], rl[4], mf[3], mf[4])
    ope_err = last["ope"][last["ope"]["session_weights"][0]]["dr"][3] if "ope" in last else float("nan")
    print("\nRL - MF D7, p of the two-proportion test / with users as clusters: "
          + ", ".join(f"seed {r['seed']} {rl_minus_mf(r):+.3f} p={d7_p(r):.3g}/{d7_p(r, clustered=True):.3g}"
                      for r in results))
    if len(results) > 1:
        wins = sum(rl_minus_mf(r) > 0 and d7_p(r) < 0.05 for r in results)
        robust = sum(rl_minus_mf(r) > 0 and d7_p(r, clustered=True) < 0.05 for r in results)
        print(f"RL D7 above MF and significant at 95% on {wins} of {len(results)} seeds "
              f"({robust} of {len(results)} with users as clusters)")
    diff, low, high = across_seeds([rl_minus_mf(r) for r in results])
    print(f"world {world_name}: RL - MF D7 over {len(results)} seed(s): mean {diff:+.4f}, 95% t-interval over seeds "
          f"[{low:+.4f}, {high:+.4f}] ({'pinned numerics' if pin else 'unpinned'}, "
          f"{time.perf_counter() - started:.0f} s with {max(1, args.jobs)} job(s))")
    print(f"SUMMARY rl_d7={rl[0]:.4f} mf_d7={mf[0]:.4f} p_value={p_value:.4g} ope_rel_error={ope_err:.4f} "
          f"rl_minus_mf_d7={diff:.4f} ci_low={low:.4f} ci_high={high:.4f} seeds={len(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
