-- train/mf_warm_start_source: the model a nightly MF fit may warm-start from: the
-- newest version of %(model)s that was published (live now, or live before and
-- superseded) for an as-of date before %(run_date)s. Never a later date, so a
-- backfill never starts from factors that saw its future.
-- Grain: at most one row (model_version, artifact_path, artifact_sha256).
-- Parameters: %(model)s text; %(run_date)s date, the run's as-of date.
-- Read by: recsys.stages.train._warm_start.
SELECT model_version, artifact_path, artifact_sha256
FROM model_runs
WHERE model = %(model)s
  AND run_date < %(run_date)s
  AND status IN ('published', 'superseded')
  AND artifact_path IS NOT NULL
ORDER BY run_date DESC
LIMIT 1
