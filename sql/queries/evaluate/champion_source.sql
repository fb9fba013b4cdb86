-- evaluate/champion_source: the live version of %(model)s (the champion), unless
-- it is %(model_version)s itself: the evaluate stage scores it on the
-- challenger's hold-out users.
-- Grain: at most one row (model_version, run_date, artifact_path, artifact_sha256).
-- Parameters: %(model)s text; %(model_version)s text, the challenger.
-- Read by: recsys.stages.evaluate._live_model.
SELECT r.model_version, r.run_date, r.artifact_path, r.artifact_sha256
FROM live_models AS l
JOIN model_runs AS r ON r.model_version = l.model_version
WHERE l.model = %(model)s
  AND l.model_version <> %(model_version)s
