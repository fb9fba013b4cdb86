-- gate/inputs: what the champion/challenger gate compares, for one challenger version.
-- Grain: one row (none when the version is not in model_runs): the challenger's
-- model, model kind ('mf', 'rl') and run date, the live version of that model
-- (NULL when none) and its run date, and both ranking figures on the challenger's
-- hold-out (subject 'model' is the challenger, 'champion' the live model scored on
-- the same users). The DR gate reads its figures through recsys.stages.ope instead.
-- Parameters: %(model_version)s text, the challenger; %(metric)s text and
--   %(k)s integer, the ranking metric compared.
-- Read by: recsys.stages.gate.decide.
SELECT
    r.model,
    r.model_kind,
    r.run_date,
    l.model_version AS live_version,
    l.run_date      AS live_run_date,
    (SELECT value FROM eval_metrics e
      WHERE e.model_version = r.model_version AND e.subject = 'model'
        AND e.metric = %(metric)s AND e.k = %(k)s) AS challenger_value,
    (SELECT value FROM eval_metrics e
      WHERE e.model_version = r.model_version AND e.subject = 'champion'
        AND e.metric = %(metric)s AND e.k = %(k)s) AS champion_value
FROM model_runs AS r
LEFT JOIN live_models AS l ON l.model = r.model
WHERE r.model_version = %(model_version)s
