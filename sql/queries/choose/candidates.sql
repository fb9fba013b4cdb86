-- choose/candidates: what each candidate's live lists scored on tonight's hold-out.
-- Grain: one row per candidate model (model, model_kind, live_version, live_run_date,
--   tonight_version, figure, n_users): figure is the hold-out metric of the lists the
--   model serves now, scored tonight on the window's hold-out: the 'model' subject of
--   tonight's version when that version is live, the 'champion' subject (the live
--   version scored on the same users) when an older version stayed live; NULL when
--   the model has no live version or no figure tonight.
-- Parameters: %(models)s text[], the candidates; %(run_date)s date; %(metric)s text and
--   %(k)s integer, the metric compared.
-- Read by: recsys.stages.choose.choose_alias.
SELECT m.model,
       r.model_kind,
       l.model_version AS live_version,
       l.run_date      AS live_run_date,
       r.model_version AS tonight_version,
       e.value         AS figure,
       e.n_users
FROM unnest(%(models)s::text[]) AS m (model)
JOIN model_runs AS r ON r.model = m.model AND r.run_date = %(run_date)s::date
LEFT JOIN live_models AS l ON l.model = m.model
LEFT JOIN eval_metrics AS e
       ON e.model_version = r.model_version
      AND e.subject = CASE WHEN l.model_version = r.model_version THEN 'model' ELSE 'champion' END
      AND e.metric = %(metric)s AND e.k = %(k)s
      AND l.model_version IS NOT NULL
ORDER BY m.model
