-- lookup/alias_model: the model a serving alias serves now.
-- Grain: one row when the alias is set (model), none otherwise.
-- Parameters: %(alias)s text.
-- Read by: recsys.lookup.resolve_model.
SELECT model FROM serving_aliases WHERE alias = %(alias)s
