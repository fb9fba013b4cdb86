-- retention/source_has_model_version: whether the configured interaction log
-- has a model_version column (a user's view may map only the five columns
-- training reads; per-model retention then has no serving model to go by).
-- Grain: one row when the column exists, none otherwise.
-- Parameters: %(schema)s, %(table)s text, the source's schema and name.
-- Read by: recsys.stages.retention._prepare.
SELECT 1
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = %(table)s AND column_name = 'model_version'
