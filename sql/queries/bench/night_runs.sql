-- bench/night_runs: what one night did to each model: its version, whether that
-- version went live, the gate's decision, and the hold-out figures the gate compared.
-- Grain: one row per model version of the run date (model, model_kind, model_version,
--   status, is_live, gate, model_figure, champion_figure, n_users): is_live = the
--   version is what live_models serves now; gate = model_runs.metrics['gate'] (NULL
--   when the gate did not run); model_figure / champion_figure = the version's and the
--   then-live version's hold-out figure on the same users (eval_metrics subjects
--   'model' and 'champion'; NULL when not measured).
-- Parameters: %(run_date)s date; %(metric)s text and %(k)s integer, the figure read.
-- Read by: bench/quality.py, right after the night (a later night supersedes its versions).
SELECT r.model,
       r.model_kind,
       r.model_version,
       r.status,
       l.model_version IS NOT NULL AS is_live,
       r.metrics -> 'gate' AS gate,
       m.value   AS model_figure,
       c.value   AS champion_figure,
       m.n_users
FROM model_runs AS r
LEFT JOIN live_models AS l ON l.model_version = r.model_version
LEFT JOIN eval_metrics AS m
       ON m.model_version = r.model_version AND m.subject = 'model' AND m.metric = %(metric)s AND m.k = %(k)s
LEFT JOIN eval_metrics AS c
       ON c.model_version = r.model_version AND c.subject = 'champion' AND c.metric = %(metric)s AND c.k = %(k)s
WHERE r.run_date = %(run_date)s::date
ORDER BY r.model
