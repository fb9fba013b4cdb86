-- ui/ope_series: off-policy estimates of each policy's return rate against the
-- realised rate of the arm that served it, over nights, from `ope_estimates`
-- (migration 0004).
-- Grain: one row per (policy, run_date).
-- Parameters: %(days)s integer, nights shown back from the newest.
-- Read by: recsys.ui.data.ope_series (the "OPE: predicted vs realised" panel).
SELECT o.policy, o.run_date, o.predicted, o.ci_low, o.ci_high, o.realised
FROM ope_estimates AS o
WHERE o.run_date >= (SELECT max(run_date) FROM ope_estimates) - %(days)s
ORDER BY o.policy, o.run_date
