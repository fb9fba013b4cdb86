-- bench/alias_choice: what the serving alias serves after a night, and the night's
-- choice with every candidate's figure.
-- Grain: at most one row (served_model, chosen_model, model_version, reason, figures):
--   served_model from serving_aliases (NULL when the alias was never pointed),
--   the rest from alias_choices for the date (NULL when the night recorded none).
-- Parameters: %(alias)s text; %(run_date)s date.
-- Read by: bench/quality.py after a data set's last night.
SELECT a.model AS served_model, c.model AS chosen_model, c.model_version, c.reason, c.figures
FROM (SELECT %(alias)s::text AS alias) AS wanted
LEFT JOIN serving_aliases AS a ON a.alias = wanted.alias
LEFT JOIN alias_choices AS c ON c.alias = wanted.alias AND c.run_date = %(run_date)s::date
