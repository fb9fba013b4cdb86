-- cli/serving_aliases: each serving alias, the model it serves, and the reason of the
-- night that chose it, for the line `recsys models list` ends with.
-- Grain: one row per alias (alias, model, run_date, reason), by alias.
-- Parameters: none.
-- Read by: recsys.cli._cmd_models_list.
SELECT a.alias, a.model, a.run_date, c.reason
FROM serving_aliases AS a
LEFT JOIN alias_choices AS c ON c.alias = a.alias AND c.run_date = a.run_date
ORDER BY a.alias
