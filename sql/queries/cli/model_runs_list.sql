-- cli/model_runs_list: the registry as `recsys models list` prints it, newest first.
-- Grain: one row per model version.
-- Parameters: %(limit)s integer, rows returned.
-- Read by: recsys.cli._cmd_models_list.
SELECT model_version, model_kind, status, data_interval_start, data_interval_end,
       n_interactions, n_users, n_items, metrics, triggered_by
FROM model_runs
ORDER BY run_date DESC, model
LIMIT %(limit)s
