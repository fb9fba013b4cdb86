-- ui/model_runs: the model registry as the Recsys page lists it, newest first,
-- optionally for one model and a range of as-of dates.
-- Grain: one row per model version.
-- Parameters: %(limit)s integer, rows returned; %(model)s text or NULL (every model);
--   %(date_from)s, %(date_to)s date or NULL (as-of dates, both ends included).
-- Read by: recsys.ui.data.model_runs (the "Model runs" panel).
SELECT r.model, r.model_version, r.model_kind, r.run_date, r.status,
       r.n_interactions, r.n_users, r.n_items, r.metrics, r.triggered_by,
       r.created_at, r.published_at
FROM model_runs AS r
WHERE (%(model)s::text IS NULL OR r.model = %(model)s::text)
  AND (%(date_from)s::date IS NULL OR r.run_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR r.run_date <= %(date_to)s::date)
ORDER BY r.run_date DESC, r.model, r.model_version
LIMIT %(limit)s
