-- ui/model_runs: the model registry as the Recsys page lists it, newest first.
-- Grain: one row per model version.
-- Parameters: %(limit)s  integer, rows returned.
-- Read by: recsys.ui.data.model_runs (the "Model runs" panel).
SELECT r.model, r.model_version, r.model_kind, r.run_date, r.status,
       r.n_interactions, r.n_users, r.n_items, r.metrics, r.triggered_by,
       r.created_at, r.published_at
FROM model_runs AS r
ORDER BY r.run_date DESC, r.model, r.model_version
LIMIT %(limit)s
