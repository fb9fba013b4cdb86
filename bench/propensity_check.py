"""How good is the behaviour head's propensity where a log has none? (issue #21)

Where a log carries no propensities, REINFORCE's behaviour head stands in for them
(`recsys.models.rl.reinforce.reinforce_loss`). This bench checks that estimate on a log
that does carry them: the simulated one (`recsys.sim.synthetic_log.generate_events`, no
database). It builds the RL trajectories as the nightly does (`recsys.models.rl.trajectories.build`
with the default `RLConfig`), fits REINFORCE twice, once with the logged propensities and
once with them hidden (NaN, so the head's estimate is used everywhere), and reports:

1. the error of the head's estimate (the hidden fit's head, the one that stood in) against
   the logged propensities over every logged impression: mean absolute error, median
   relative error, Spearman and Pearson correlation, mean(estimated) / mean(logged);
2. the two fits side by side (last epoch's pi/beta diagnostics, overlap of their lists);
3. one fixed target list policy (the logged-propensity fit's top-K lists) estimated off-policy
   (`recsys.metrics.off_policy.evaluate_list_policy`, the nightly's OPE settings) on one
   logged day, once with the logged propensities and once with the head's in their place.

Scales. The head's softmax beta(a|s) is a per-impression share: the fit compares it with
the logged propensity divided by the session's slate size, since it reads the log's column
as an inclusion probability P(a in slate) (one of K impressions is a with P(a in slate) / K).
So the estimate is put on the column's scale as slate_size * beta(a|s) (capped at 1, as a
probability must be): the figure the fit and OPE effectively use in the column's place. But
the simulator's column is not an inclusion probability: it is the per-slot sequential draw
probability pi_a / (1 - pi mass of the earlier slots), which for a rarely shown item is
about K times smaller than P(a in slate). A like-for-like check of the head therefore also
compares it with the true inclusion probability (`slate_inclusion_probability`, Monte Carlo
over the simulator's own sampler; the logging policy ignores the user, so it is one vector),
and the bench prints the gap between the logged column and that truth as well, and the OPE
estimate with the true inclusion probabilities as a third column.

    python bench/propensity_check.py            # 14 days, 3,000 users, 300 items, 6 epochs
    python bench/propensity_check.py --quick    # 10 days, 1,500 users, 200 items, 3 epochs; under a minute

Ends with `SUMMARY propensity_mae=<..> propensity_rel_err=<median relative error>
propensity_corr=<Spearman> ope_return_logged=<..> ope_return_estimated=<..> ope_return_diff=<..>`
(error figures: slate_size x beta against the logged column; OPE: DR return rate; diff =
estimated - logged) and a few more keys for the like-for-like comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

K = 10  # the simulator's slate size and the nightly's K


def propensity_errors(estimated: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """MAE, median relative error |e - r| / r, Spearman and Pearson correlation, mean(e) / mean(r)."""
    from scipy.stats import pearsonr, spearmanr

    e, r = np.asarray(estimated, np.float64), np.asarray(reference, np.float64)
    return {"mae": float(np.mean(np.abs(e - r))), "rel_err": float(np.median(np.abs(e - r) / r)),
            "spearman": float(spearmanr(e, r).statistic), "pearson": float(pearsonr(e, r).statistic),
            "mean_ratio": float(e.mean() / r.mean())}


def simulate(days: int, users: int, items: int, seed: int):  # noqa: ANN201 - (frame, trajectories, config)
    from recsys.config import RLConfig
    from recsys.models.rl import trajectories
    from recsys.sim.synthetic_log import generate_events

    frame = generate_events(days, users, items, seed)
    code = {"impression": trajectories.IMPRESSION, "click": trajectories.CLICK, "consume": trajectories.CONSUME}
    ts = frame["event_time"].astype("int64").to_numpy() / 1e6
    cfg = RLConfig()
    # as recsys.stages.train_rl._trajectories builds them from the window's events; the simulator's
    # ids are already contiguous indices 0..users-1 and 0..items-1
    end_ts = float(np.ceil(ts.max() / 86_400.0) * 86_400.0)
    traj = trajectories.build(frame["user_id"].to_numpy(np.int64), frame["item_id"].to_numpy(np.int64),
                              frame["event_type"].map(code).to_numpy(np.int8), ts,
                              frame["session_id"].to_numpy(np.float64), frame["propensity"].to_numpy(np.float64),
                              items, cfg.history_len, cfg.gamma, cfg.retention_weight, cfg.return_horizon_days,
                              end_ts, cfg.retention_credit, cfg.consume_weight, cfg.abandon_penalty)
    return frame, traj, cfg


def policy_lists(net, traj, sessions: np.ndarray, k: int) -> np.ndarray:  # noqa: ANN001 - PolicyNet, Trajectories
    """(len(sessions), k) the policy head's top-k items at each session's state."""
    import torch

    with torch.no_grad():
        logits = net.policy(net.encoder(torch.from_numpy(traj.history[sessions]))).numpy()
    return np.argsort(-logits, axis=1, kind="stable")[:, :k]


def ope_inputs(frame, traj, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """What the nightly OPE reads for logged day `day` (`sql/queries/ope/logged_impressions.sql`),
    from the trajectories: the day's impressions (indices into `traj`), their users, and
    returned = 1 when the user clicked or consumed on the next day (the default active types)."""
    day_of_event = frame["event_time"].astype("int64").to_numpy() // 86_400_000_000
    active = np.isin(frame["event_type"].astype(str).to_numpy(), ("click", "consume"))
    came_back = np.unique(frame["user_id"].to_numpy(np.int64)[active & (day_of_event == day + 1)])
    on_day = np.flatnonzero(traj.session_day[traj.session_of] == day)
    user = traj.session_user[traj.session_of[on_day]]
    return on_day, user, np.isin(user, came_back).astype(np.float64)


def run(days: int, users: int, items: int, epochs: int, seed: int) -> dict:
    from recsys.config import OPEConfig
    from recsys.metrics.off_policy import evaluate_list_policy
    from recsys.models.rl.reinforce import behaviour_propensities, fit_reinforce
    from recsys.sim.synthetic_log import slate_inclusion_probability

    started = time.perf_counter()
    frame, traj, cfg = simulate(days, users, items, seed)
    cfg = dataclasses.replace(cfg, epochs=epochs, seed=seed)
    logged = traj.propensity
    print(f"simulated {len(frame):,} events, {traj.n:,} impressions in {len(traj.session_user):,} sessions "
          f"({days} days, {users:,} users, {items} items, seed {seed}); propensity coverage "
          f"{100 * traj.propensity_coverage:.0f}% ({time.perf_counter() - started:.1f} s)")

    fits = {}
    for name, t in (("logged", traj), ("hidden", dataclasses.replace(traj, propensity=np.full(traj.n, np.nan)))):
        t0 = time.perf_counter()
        net, fit = fit_reinforce(t, cfg, K)
        fits[name] = (net, fit)
        d = fit.diagnostics[-1]
        print(f"fit with propensities {name:<6}: {fit.epochs_kept} epochs kept, {time.perf_counter() - t0:.1f} s; "
              f"last epoch pi/beta mean {d['weight_mean']:.3f}, ESS {100 * d['ess_share']:.1f}%, clipped "
              f"{100 * d['clipped_share']:.2f}%, policy entropy {d['entropy']:.2f} nats, behaviour CE "
              f"{d['behaviour']:.3f}" + (f"; stopped early: {fit.stopped_early}" if fit.stopped_early else ""))

    # the head's estimate on the column's scale: what the fit uses in the column's place, times K
    beta_hidden = behaviour_propensities(fits["hidden"][0], traj)
    beta_logged_fit = behaviour_propensities(fits["logged"][0], traj)
    est = np.minimum(traj.slate_size * beta_hidden, 1.0)
    est_logged_fit = np.minimum(traj.slate_size * beta_logged_fit, 1.0)
    inclusion = slate_inclusion_probability(items, seed, draws=200_000)[traj.action]
    comparisons = {
        "head x K vs logged column (as the fit and OPE read it)": propensity_errors(est, logged),
        "head x K vs true P(a in slate) (like for like)": propensity_errors(est, inclusion),
        "head x K of the logged-propensity fit vs logged column": propensity_errors(est_logged_fit, logged),
        "logged column vs true P(a in slate) (the column's scale)": propensity_errors(logged, inclusion),
    }
    print(f"\npropensities over {traj.n:,} logged impressions: mean logged column {logged.mean():.5f}, mean true "
          f"P(a in slate) {inclusion.mean():.5f}, mean head x K {est.mean():.5f} (hidden fit; {np.mean(est >= 1):.2%} "
          f"capped at 1)")
    print(f"{'estimate vs reference':<60} {'MAE':>9} {'med rel err':>11} {'Spearman':>9} {'Pearson':>8} "
          f"{'mean ratio':>10}")
    for label, m in comparisons.items():
        print(f"{label:<60} {m['mae']:>9.5f} {m['rel_err']:>11.3f} {m['spearman']:>9.3f} {m['pearson']:>8.3f} "
              f"{m['mean_ratio']:>10.3f}")

    # OPE on one logged day (the nightly estimates day D-2, whose next day is observed): the
    # second-to-last day, returned = the user clicked or consumed on the next day
    ope_cfg = OPEConfig()
    day = int(traj.session_day.max()) - 1
    on_day, user, returned = ope_inputs(frame, traj, day)
    # the fixed target: the logged-propensity fit's top-K at each user's first session state of the day
    day_sessions = np.unique(traj.session_of[on_day])
    list_users, first = np.unique(traj.session_user[day_sessions], return_index=True)
    lists = policy_lists(fits["logged"][0], traj, day_sessions[first], K)
    hidden_lists = policy_lists(fits["hidden"][0], traj, day_sessions[first], K)
    overlap = float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(lists, hidden_lists)])) / K

    def ope(propensity: np.ndarray) -> dict:
        return evaluate_list_policy(user, traj.action[on_day], traj.session_of[on_day], propensity,
                                    traj.click[on_day], returned, list_users, lists, items, ope_cfg.explore,
                                    ope_cfg.weight_cap, ope_cfg.n_bootstrap, ope_cfg.seed, ope_cfg.session_weight)

    ope_runs = {"logged column": ope(logged[on_day]), "head x K": ope(est[on_day]),
                "true P(a in slate)": ope(inclusion[on_day])}
    print(f"\nOPE of the logged-propensity fit's top-{K} lists (explore {ope_cfg.explore}, cap {ope_cfg.weight_cap}) "
          f"on day {day - int(traj.session_day.min())} of the log: {len(on_day):,} impressions, "
          f"{len(day_sessions):,} sessions, {len(list_users):,} users; the hidden-propensity fit's lists share "
          f"{100 * overlap:.0f}% of their items with them")
    for target in ("click", "return"):
        for estimator in ("ips", "snips", "dr"):
            cells = "  ".join(f"{name} {e.value:.4f} [{e.ci_low:.4f}, {e.ci_high:.4f}] ESS {e.ess:.0f}"
                              for name, e in ((n, r[target][estimator]) for n, r in ope_runs.items()))
            diff = ope_runs["head x K"][target][estimator].value - ope_runs["logged column"][target][estimator].value
            print(f"{target:<6} {estimator:<5} {cells}  head - logged {diff:+.4f}")
    return {"comparisons": comparisons, "ope": ope_runs, "seconds": time.perf_counter() - started,
            "n_impressions": traj.n, "ope_impressions": len(on_day), "list_overlap": overlap}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 days, 1,500 users, 200 items, 3 epochs")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.quick:
        args.days, args.users, args.items, args.epochs = 10, 1500, 200, 3
    result = run(args.days, args.users, args.items, args.epochs, args.seed)
    main_cmp = result["comparisons"]["head x K vs logged column (as the fit and OPE read it)"]
    like = result["comparisons"]["head x K vs true P(a in slate) (like for like)"]
    dr = {name: r["return"]["dr"].value for name, r in result["ope"].items()}
    print(f"\n{result['seconds']:.0f} s in all")
    print(f"SUMMARY propensity_mae={main_cmp['mae']:.5f} propensity_rel_err={main_cmp['rel_err']:.4f} "
          f"propensity_corr={main_cmp['spearman']:.4f} propensity_pearson={main_cmp['pearson']:.4f} "
          f"propensity_mean_ratio={main_cmp['mean_ratio']:.4f} inclusion_mae={like['mae']:.5f} "
          f"inclusion_rel_err={like['rel_err']:.4f} inclusion_corr={like['spearman']:.4f} "
          f"ope_return_logged={dr['logged column']:.4f} ope_return_estimated={dr['head x K']:.4f} "
          f"ope_return_diff={dr['head x K'] - dr['logged column']:.4f} "
          f"ope_return_inclusion={dr['true P(a in slate)']:.4f} "
          f"list_overlap={result['list_overlap']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
