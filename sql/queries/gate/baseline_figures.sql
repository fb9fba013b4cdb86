-- gate/baseline_figures: the baselines' hold-out figures the gate's baseline floor
-- holds a learned challenger to, best first.
-- Grain: one row per baseline (baseline, value): each baseline the evaluate stage
-- scored beside the challenger on its own hold-out users (eval_metrics subjects
-- %(beside)s of the challenger's version), then each model of kind 'baseline' of the
-- same run date, evaluated on a hold-out of the same number of users (the night's
-- split of the same window: the same users), under its model name.
-- Parameters: %(model_version)s text, the challenger; %(metric)s text and %(k)s
--   integer, the ranking metric compared; %(beside)s text[], the subjects scored beside
--   every model (recsys.holdout_users.BASELINE_SUBJECTS); %(run_date)s date, the
--   challenger's; %(n_users)s integer, its hold-out users.
-- Read by: recsys.stages.gate.baseline_floor.
WITH beside AS (
    SELECT e.subject AS baseline, e.value
    FROM eval_metrics AS e
    WHERE e.model_version = %(model_version)s AND e.subject = ANY(%(beside)s::text[])
      AND e.metric = %(metric)s AND e.k = %(k)s
),
tonight AS (
    SELECT r.model AS baseline, e.value
    FROM model_runs AS r
    JOIN eval_metrics AS e ON e.model_version = r.model_version
    WHERE r.model_kind = 'baseline' AND r.run_date = %(run_date)s AND r.model_version <> %(model_version)s
      AND e.subject = 'model' AND e.metric = %(metric)s AND e.k = %(k)s AND e.n_users = %(n_users)s
)
SELECT baseline, value FROM beside
UNION ALL
SELECT baseline, value FROM tonight
ORDER BY value DESC, baseline
