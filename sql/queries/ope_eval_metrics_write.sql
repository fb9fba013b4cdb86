-- ope_eval_metrics_write: one off-policy figure of a model version into eval_metrics
-- (subject 'ope'; metric '<estimator>_<target>[_ci_low|_ci_high|_ess]'; k = the list length).
-- Grain: (model_version, subject, metric, k). Read by analysts and `recsys models show`.
INSERT INTO eval_metrics (model_version, subject, metric, k, value, n_users)
VALUES (%(model_version)s, 'ope', %(metric)s, %(k)s, %(value)s, %(n_users)s)
ON CONFLICT (model_version, subject, metric, k) DO UPDATE SET value = EXCLUDED.value, n_users = EXCLUDED.n_users
