-- ope/eval_metrics_write: one off-policy figure of a model version into eval_metrics
-- (metric '<estimator>_<target>[_ci_low|_ci_high|_ess]'; k = the list length).
-- Grain: one row per (model_version, subject, metric, k) in eval_metrics; no rows returned.
-- Parameters: %(model_version)s text; %(subject)s text, 'ope' for the logged day
--   of the version's own night, 'ope@YYYY-MM-DD' for another logged day (the live
--   version evaluated for a later night's DR gate); %(metric)s text; %(k)s integer;
--   %(value)s double; %(n_users)s integer, units behind the figure.
-- Run by: recsys.stages.ope._write_figures and recsys.stages.ope.record_exposure; read by analysts, `recsys models show`
--   and the DR gate (ope/return_estimate_read.sql).
INSERT INTO eval_metrics (model_version, subject, metric, k, value, n_users)
VALUES (%(model_version)s, %(subject)s, %(metric)s, %(k)s, %(value)s, %(n_users)s)
ON CONFLICT (model_version, subject, metric, k) DO UPDATE SET value = EXCLUDED.value, n_users = EXCLUDED.n_users
