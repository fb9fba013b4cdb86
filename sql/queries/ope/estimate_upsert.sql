-- ope/estimate_upsert: the headline off-policy estimate of one candidate policy
-- for one as-of date (replaces an earlier run of the same night; keeps `realised`).
-- Grain: one row per (run_date, policy) in ope_estimates; no rows returned.
-- Parameters: %(run_date)s date; %(policy)s text, the model; %(model_version)s text;
--   %(estimator)s, %(target)s text (e.g. 'dr', 'return_d1'); %(predicted)s,
--   %(ci_low)s, %(ci_high)s double, the estimate and its interval; %(n_units)s
--   integer, sessions used; %(ess)s double, effective sample size;
--   %(weight_cap)s double, the importance-weight cap.
-- Run by: recsys.stages.ope.estimate_candidate; read by the UI (ui/ope_series.sql).
INSERT INTO ope_estimates (run_date, policy, model_version, estimator, target, predicted, ci_low, ci_high,
                           n_units, ess, weight_cap)
VALUES (%(run_date)s, %(policy)s, %(model_version)s, %(estimator)s, %(target)s, %(predicted)s, %(ci_low)s,
        %(ci_high)s, %(n_units)s, %(ess)s, %(weight_cap)s)
ON CONFLICT (run_date, policy) DO UPDATE SET
    model_version = EXCLUDED.model_version, estimator = EXCLUDED.estimator, target = EXCLUDED.target,
    predicted = EXCLUDED.predicted, ci_low = EXCLUDED.ci_low, ci_high = EXCLUDED.ci_high,
    n_units = EXCLUDED.n_units, ess = EXCLUDED.ess, weight_cap = EXCLUDED.weight_cap, computed_at = now()
