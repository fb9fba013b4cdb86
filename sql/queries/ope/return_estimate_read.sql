-- ope/return_estimate_read: a stored DR estimate of one version's D1 return rate
-- with its 95 percent bootstrap interval, as recsys.stages.ope wrote it to eval_metrics.
-- Grain: one row (all NULL when nothing is stored).
-- Parameters: %(model_version)s text; %(subject)s text ('ope': the logged day of
--   the version's own night; 'ope@YYYY-MM-DD': another logged day, e.g. the live
--   version evaluated for a later night's gate); %(k)s integer.
-- Read by: recsys.stages.ope.stored_return_estimate (the DR gate's inputs).
SELECT
    max(e.value)   FILTER (WHERE e.metric = 'dr_return')         AS value,
    max(e.value)   FILTER (WHERE e.metric = 'dr_return_ci_low')  AS ci_low,
    max(e.value)   FILTER (WHERE e.metric = 'dr_return_ci_high') AS ci_high,
    max(e.value)   FILTER (WHERE e.metric = 'dr_return_ess')     AS ess,
    max(e.n_users) FILTER (WHERE e.metric = 'dr_return')         AS n_sessions
FROM eval_metrics AS e
WHERE e.model_version = %(model_version)s
  AND e.subject = %(subject)s
  AND e.k = %(k)s
  AND e.metric IN ('dr_return', 'dr_return_ci_low', 'dr_return_ci_high', 'dr_return_ess')
