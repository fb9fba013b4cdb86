-- registry/model_run_read: the registry record of one model version, as a ModelRun.
-- Grain: at most one row (model, model_kind, model_version, run_date,
--   artifact_path, artifact_sha256, status, metrics).
-- Parameters: %(model_version)s text.
-- Read by: recsys.db.registry.get_run.
SELECT model, model_kind, model_version, run_date, artifact_path, artifact_sha256, status, metrics
FROM model_runs
WHERE model_version = %(model_version)s
