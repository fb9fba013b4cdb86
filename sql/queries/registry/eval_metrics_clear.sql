-- registry/eval_metrics_clear: forget a version's evaluation figures before
-- they are written again (registry/eval_metrics_write.sql), in one transaction.
-- Grain: deletes rows of eval_metrics (one per subject, metric, k of the version).
-- Parameters: %(model_version)s text.
-- Run by: recsys.db.registry.write_metrics.
DELETE FROM eval_metrics WHERE model_version = %(model_version)s
