-- Registry listing, newest first. Parameter: %(limit)s.
SELECT model_version, model_kind, status, data_interval_start, data_interval_end,
       n_interactions, n_users, n_items, metrics, triggered_by
FROM model_runs
ORDER BY run_date DESC, model
LIMIT %(limit)s
