-- gate/inputs: what the champion/challenger gate compares, for one challenger version.
-- Grain: one row (none when the version is not in model_runs): the challenger's
-- model, model kind ('mf', 'rl', 'baseline') and run date, the live version of that
-- model (NULL when none) and its run date, both ranking figures on the challenger's
-- hold-out (subject 'model' is the challenger, 'champion' the live model scored on
-- the same users), the number of hold-out users behind the challenger's figure (NULL
-- without one), and the challenger's model file, beside which the evaluate stage
-- keeps the per-user figures (recsys.holdout_users). The DR gate reads its figures
-- through recsys.stages.ope instead.
-- Parameters: %(model_version)s text, the challenger; %(metric)s text and
--   %(k)s integer, the ranking metric compared.
-- Read by: recsys.stages.gate.decide.
WITH figures AS (
    SELECT e.subject, e.value, e.n_users
    FROM eval_metrics AS e
    WHERE e.model_version = %(model_version)s AND e.subject IN ('model', 'champion')
      AND e.metric = %(metric)s AND e.k = %(k)s
)
SELECT
    r.model,
    r.model_kind,
    r.run_date,
    l.model_version AS live_version,
    l.run_date      AS live_run_date,
    (SELECT value FROM figures WHERE subject = 'model')    AS challenger_value,
    (SELECT value FROM figures WHERE subject = 'champion') AS champion_value,
    (SELECT n_users FROM figures WHERE subject = 'model')  AS holdout_users,
    r.artifact_path
FROM model_runs AS r
LEFT JOIN live_models AS l ON l.model = r.model
WHERE r.model_version = %(model_version)s
