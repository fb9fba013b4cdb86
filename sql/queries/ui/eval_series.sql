-- ui/eval_series: hold-out metrics at one K over as-of dates, per model and
-- subject ('model' or a baseline such as 'popularity').
-- Grain: one row per (model, run_date, subject, metric).
-- Parameters: %(k)s integer, the K; %(metrics)s text[], the metric names
--   (e.g. {ndcg,recall}); %(days)s integer, days shown back from the newest run_date.
-- Read by: recsys.ui.data.eval_series (the "Hold-out metrics" panel).
WITH runs AS (
    SELECT r.model, r.model_version, r.run_date
    FROM model_runs AS r
    WHERE r.run_date >= (SELECT max(run_date) FROM model_runs) - %(days)s
)
SELECT runs.model, runs.run_date, e.subject, e.metric, e.value, e.n_users
FROM runs
JOIN eval_metrics AS e ON e.model_version = runs.model_version
WHERE e.k = %(k)s
  AND e.metric = ANY(%(metrics)s)
ORDER BY runs.model, e.metric, e.subject, runs.run_date
