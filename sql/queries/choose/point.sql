-- choose/point: point the alias at tonight's winner, unless a newer date's choice
-- already holds it (a backfill of an older date records its choice, never moves the alias).
-- Grain: one row per alias in serving_aliases; returns the model when the pointer
--   moved (or stayed on the same model), no row when a newer date holds it.
-- Parameters: %(alias)s text, %(model)s text, %(run_date)s date.
-- Run by: recsys.stages.choose.choose_alias, before the live view is redefined.
INSERT INTO serving_aliases AS a (alias, model, run_date, chosen_at)
VALUES (%(alias)s, %(model)s, %(run_date)s, now())
ON CONFLICT (alias) DO UPDATE SET
    model     = EXCLUDED.model,
    run_date  = EXCLUDED.run_date,
    chosen_at = EXCLUDED.chosen_at
WHERE a.run_date <= EXCLUDED.run_date
RETURNING model
