-- cli/model_runs_list: the newest registry rows, for `recsys models list`.
-- Grain: one row per model version, newest as-of date first, then by model.
-- Parameters: %(limit)s integer, how many rows; %(model)s text or NULL, only this model's versions.
-- Read by: recsys.cli._cmd_models_list.
SELECT model_version, model_kind, status, data_interval_start, data_interval_end,
       n_interactions, n_users, n_items, metrics, triggered_by
FROM model_runs
WHERE %(model)s::text IS NULL OR model = %(model)s
ORDER BY run_date DESC, model
LIMIT %(limit)s
