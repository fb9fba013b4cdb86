-- ui/live_models: the version of each model that serving reads, and when it
-- was made live. Grain: one row per model. No parameters.
-- Read by: recsys.ui.data.live_models (the "Live models" panel).
SELECT l.model, l.model_version, l.run_date, l.published_at, r.model_kind, r.metrics
FROM live_models AS l
LEFT JOIN model_runs AS r ON r.model_version = l.model_version
ORDER BY l.model
