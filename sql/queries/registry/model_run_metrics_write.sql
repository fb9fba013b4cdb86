-- registry/model_run_metrics_write: the headline evaluation figures of a version,
-- copied into model_runs.metrics (replacing what was there).
-- Grain: one row of model_runs updated; no rows returned.
-- Parameters: %(metrics)s jsonb, the summary; %(model_version)s text.
-- Run by: recsys.db.registry.write_metrics.
UPDATE model_runs SET metrics = %(metrics)s WHERE model_version = %(model_version)s
