-- cleanup/kept_versions: the versions whose artifacts the artifact retention keeps:
-- per model the %(keep)s newest as-of dates in the registry (whatever their status),
-- and every live version, however old.
-- Grain: one row per kept (model, run_date).
-- Parameters: %(keep)s integer, versions of each model kept (RECSYS_KEEP_VERSIONS).
-- Read by: recsys.stages.cleanup_artifacts.cleanup_artifacts.
WITH ranked AS (
    SELECT model, run_date, row_number() OVER (PARTITION BY model ORDER BY run_date DESC) AS newest_first
    FROM model_runs
)
SELECT ranked.model, ranked.run_date, l.model_version IS NOT NULL AS is_live
FROM ranked
LEFT JOIN live_models AS l ON l.model = ranked.model AND l.run_date = ranked.run_date
WHERE ranked.newest_first <= %(keep)s OR l.model_version IS NOT NULL
