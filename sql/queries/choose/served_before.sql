-- choose/served_before: the version an alias served by the choice that holds it, read
-- before tonight's choice replaces it (so the night can say whether what it serves changed).
-- Grain: at most one row: the alias's pointer in serving_aliases joined to that night's
--   record in alias_choices; no row before the alias's first choice.
-- Parameters: %(alias)s text.
-- Run by: recsys.stages.choose.choose_alias, before choose/point.
SELECT c.model_version
FROM serving_aliases AS a
JOIN alias_choices AS c ON c.alias = a.alias AND c.run_date = a.run_date
WHERE a.alias = %(alias)s
