-- registry/model_run_failed: record that a stage of (model, run_date) failed for
-- good (after its retries). A version that never got a row (training itself
-- failed) gets one with status 'failed'; an existing row becomes 'failed' unless
-- its lists are the live ones (a failed re-run of the live date leaves the earlier
-- lists serving, so the row stays 'published'). Either way metrics.last_failure
-- says which stage failed, when, and why. A later successful attempt sets the
-- status again.
-- Grain: one row per (model, run_date) in model_runs; returns the resulting status.
-- Parameters: %(model)s, %(model_kind)s, %(model_version)s text; %(run_date)s date;
--   %(data_interval_start)s, %(data_interval_end)s, %(train_window_start)s
--   timestamptz; %(failure)s text, a JSON object (stage, error, error_type, at);
--   %(triggered_by)s, %(code_version)s text.
-- Run by: recsys.db.registry.record_failure.
INSERT INTO model_runs (
    model, model_kind, model_version, run_date, data_interval_start, data_interval_end,
    train_window_start, metrics, status, triggered_by, code_version
) VALUES (
    %(model)s, %(model_kind)s, %(model_version)s, %(run_date)s, %(data_interval_start)s, %(data_interval_end)s,
    %(train_window_start)s, jsonb_build_object('last_failure', %(failure)s::jsonb), 'failed',
    %(triggered_by)s, %(code_version)s
)
ON CONFLICT (model, run_date) DO UPDATE SET
    metrics = model_runs.metrics || jsonb_build_object('last_failure', %(failure)s::jsonb),
    status  = CASE
                WHEN EXISTS (SELECT 1 FROM live_models AS l WHERE l.model_version = model_runs.model_version)
                THEN model_runs.status
                ELSE 'failed'
              END
RETURNING status
