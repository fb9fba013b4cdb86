-- ui/aliases: each serving alias, the model it serves, and the reason of the
-- choice that set it.
-- Grain: one row per alias (alias, model, run_date, reason), by alias.
-- Parameters: none.
-- Read by: recsys.ui.data.serving_aliases (the "Live models" panel).
SELECT a.alias, a.model, a.run_date, c.reason
FROM serving_aliases AS a
LEFT JOIN alias_choices AS c ON c.alias = a.alias AND c.run_date = a.run_date
ORDER BY a.alias
