-- choose/record: record tonight's choice of the model an alias serves, replacing
-- an earlier record of the same date (a re-run or a backfill of that date).
-- Grain: one row per (alias, run_date) in alias_choices.
-- Parameters: %(alias)s text, %(run_date)s date, %(model)s text (NULL: no candidate
--   had a figure; the alias stays where it was), %(model_version)s text,
--   %(reason)s text, %(figures)s jsonb (each candidate's figure and users).
-- Run by: recsys.stages.choose.choose_alias, in the transaction that moves the alias.
INSERT INTO alias_choices AS c (alias, run_date, model, model_version, reason, figures, chosen_at)
VALUES (%(alias)s, %(run_date)s, %(model)s, %(model_version)s, %(reason)s, %(figures)s, now())
ON CONFLICT (alias, run_date) DO UPDATE SET
    model         = EXCLUDED.model,
    model_version = EXCLUDED.model_version,
    reason        = EXCLUDED.reason,
    figures       = EXCLUDED.figures,
    chosen_at     = EXCLUDED.chosen_at
