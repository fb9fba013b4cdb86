-- registry/model_run_upsert: register a trained model, replacing the record of an
-- earlier attempt at the same (model, run_date): re-running a date replaces
-- exactly that date's row.
-- Grain: one row per (model, run_date) in model_runs; returns the model_version.
-- Parameters: %(model)s, %(model_kind)s, %(model_version)s text; %(run_date)s date;
--   %(data_interval_start)s, %(data_interval_end)s, %(train_window_start)s
--   timestamptz; %(n_interactions)s, %(n_users)s, %(n_items)s integer;
--   %(params)s jsonb, the hyper-parameters; %(triggered_by)s, %(code_version)s,
--   %(artifact_path)s, %(artifact_sha256)s text.
-- Run by: recsys.db.registry.register_trained; read by `recsys models`, the
--   publish stage and analysts.
INSERT INTO model_runs (
    model, model_kind, model_version, run_date, data_interval_start, data_interval_end,
    train_window_start, n_interactions, n_users, n_items, params, metrics, status,
    triggered_by, code_version, artifact_path, artifact_sha256
) VALUES (
    %(model)s, %(model_kind)s, %(model_version)s, %(run_date)s, %(data_interval_start)s, %(data_interval_end)s,
    %(train_window_start)s, %(n_interactions)s, %(n_users)s, %(n_items)s, %(params)s, '{}'::jsonb, 'trained',
    %(triggered_by)s, %(code_version)s, %(artifact_path)s, %(artifact_sha256)s
)
ON CONFLICT (model, run_date) DO UPDATE SET
    data_interval_start = EXCLUDED.data_interval_start,
    data_interval_end   = EXCLUDED.data_interval_end,
    train_window_start  = EXCLUDED.train_window_start,
    n_interactions      = EXCLUDED.n_interactions,
    n_users             = EXCLUDED.n_users,
    n_items             = EXCLUDED.n_items,
    params              = EXCLUDED.params,
    metrics             = '{}'::jsonb,
    -- a version that is live stays marked published until its replacement is
    status              = CASE WHEN model_runs.status = 'published' THEN 'published' ELSE 'trained' END,
    triggered_by        = EXCLUDED.triggered_by,
    code_version        = EXCLUDED.code_version,
    artifact_path       = EXCLUDED.artifact_path,
    artifact_sha256     = EXCLUDED.artifact_sha256,
    created_at          = now()
RETURNING model_version
