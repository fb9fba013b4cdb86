-- registry/eval_metrics_write: one evaluation figure of a model version.
-- Grain: one row per (model_version, subject, metric, k) in eval_metrics; no rows returned.
-- The caller deletes the version's earlier figures in the same transaction
-- (registry/eval_metrics_clear.sql), so a re-run replaces them.
-- Parameters: %(model_version)s text; %(subject)s text ('model', 'champion' or a
--   baseline); %(metric)s text; %(k)s integer; %(value)s double; %(n_users)s integer;
--   %(n_impressions)s integer or NULL (the per-impression figures' count, migration 0013).
-- Run by: recsys.db.registry.write_metrics; read by analysts, the gate and the UI.
INSERT INTO eval_metrics (model_version, subject, metric, k, value, n_users, n_impressions)
VALUES (%(model_version)s, %(subject)s, %(metric)s, %(k)s, %(value)s, %(n_users)s, %(n_impressions)s)
