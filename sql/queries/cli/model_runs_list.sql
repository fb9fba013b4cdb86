-- cli/model_runs_list: the registry as `recsys models list` prints it, newest first:
-- each version's headline figure beside the live model's and popularity's, and
-- what the gate decided, and the approver where one was asked (or where the version failed).
-- Grain: one row per model version (model, run_date), at most %(limit)s rows.
-- The headline figure is the hold-out ranking metric %(metric)s at %(k)s (subject
-- 'model'; the live model scored on the same users is subject 'champion', the
-- popularity baseline 'popularity'), or for an off-policy model its DR estimate
-- of the D1 return rate on its night's logged day D-2 (subject 'ope', metric
-- 'dr_return'); there the live version's figure is the one the DR gate stored
-- under it for that day (subject 'ope@<day>'), and popularity's is that of the
-- popularity model's version of the same night, when that night estimated it.
-- A live version is not compared with itself (the evaluate stage's champion
-- never is either).
-- Parameters: %(model)s text, one model's versions only (NULL: every model);
--   %(limit)s integer, rows returned; %(metric)s text, the hold-out metric;
--   %(k)s integer; %(off_policy_models)s text[], the models read out off-policy
--   (a version of kind 'rl' counts too, for models no longer in the catalogue);
--   %(popularity_model)s text, the popularity baseline's model name.
-- Read by: recsys.registry_table.read_entries (`recsys models list`).
WITH runs AS (
    SELECT r.model_version, r.model, r.model_kind, r.run_date, r.status, r.metrics, r.triggered_by,
           r.n_interactions, r.n_users, r.n_items, r.data_interval_start, r.data_interval_end,
           r.params ->> 'backend' AS backend,
           (r.model = ANY(%(off_policy_models)s::text[]) OR r.model_kind = 'rl') AS off_policy
    FROM model_runs AS r
    WHERE %(model)s::text IS NULL OR r.model = %(model)s::text
    ORDER BY r.run_date DESC, r.model
    LIMIT %(limit)s
),
headline AS (
    SELECT ru.*,
           CASE WHEN ru.off_policy THEN 'dr_return' ELSE %(metric)s::text END AS metric,
           -- the live version the gate compared with; before the gate, the one live now
           COALESCE(ru.metrics -> 'gate' ->> 'champion_version', l.model_version) AS live_version,
           l.model_version IS NOT NULL AND l.model_version = ru.model_version AS is_live
    FROM runs AS ru
    LEFT JOIN live_models AS l ON l.model = ru.model
),
figures AS (
    SELECT h.*,
           mine.value AS value,
           CASE WHEN h.off_policy THEN live_ope.value ELSE champion.value END AS live_value,
           CASE WHEN h.off_policy THEN popularity_ope.value ELSE popularity.value END AS popularity_value
    FROM headline AS h
    LEFT JOIN eval_metrics AS mine
      ON mine.model_version = h.model_version AND mine.metric = h.metric AND mine.k = %(k)s
     AND mine.subject = CASE WHEN h.off_policy THEN 'ope' ELSE 'model' END
    LEFT JOIN eval_metrics AS champion
      ON champion.model_version = h.model_version AND champion.subject = 'champion'
     AND champion.metric = h.metric AND champion.k = %(k)s
    LEFT JOIN eval_metrics AS popularity
      ON popularity.model_version = h.model_version AND popularity.subject = 'popularity'
     AND popularity.metric = h.metric AND popularity.k = %(k)s
    LEFT JOIN eval_metrics AS live_ope
      ON live_ope.model_version = h.live_version AND live_ope.metric = 'dr_return' AND live_ope.k = %(k)s
     AND live_ope.subject = 'ope@' || to_char(h.run_date - 2, 'YYYY-MM-DD')
    LEFT JOIN model_runs AS popularity_run
      ON popularity_run.model = %(popularity_model)s AND popularity_run.run_date = h.run_date
    LEFT JOIN eval_metrics AS popularity_ope
      ON popularity_ope.model_version = popularity_run.model_version AND popularity_ope.subject = 'ope'
     AND popularity_ope.metric = 'dr_return' AND popularity_ope.k = %(k)s
)
SELECT f.model_version, f.model, f.model_kind, f.run_date, f.status, f.is_live,
       f.metric, f.value, f.live_version, f.live_value, f.popularity_value,
       (f.metrics -> 'gate' ->> 'accepted')::boolean AS gate_accepted,
       -- an approval asked after the gate (recsys.stages.approval) follows the gate's reason
       NULLIF(concat_ws('; approval: ', f.metrics -> 'gate' ->> 'reason', f.metrics -> 'approval' ->> 'reason'), '')
           AS gate_reason,
       f.metrics -> 'last_failure' AS failure,
       f.metrics - 'gate' - 'last_failure' - 'approval' AS summary,
       f.triggered_by, f.n_interactions, f.n_users, f.n_items, f.data_interval_start, f.data_interval_end,
       f.backend
FROM figures AS f
ORDER BY f.run_date DESC, f.model
