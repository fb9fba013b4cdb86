-- cli/model_run_eval_metrics: every evaluation figure of one model version, for
-- `recsys models show`.
-- Grain: one row per (subject, metric, k), in that order (n_impressions NULL but for the
--   per-impression figures, migration 0013).
-- Parameters: %(model_version)s text.
-- Read by: recsys.cli._cmd_models_show.
SELECT subject, metric, k, value, n_users, n_impressions
FROM eval_metrics
WHERE model_version = %(model_version)s
ORDER BY subject, metric, k
