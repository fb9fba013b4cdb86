-- cli/model_run_record: one model_runs row as a JSON object, for `recsys models show`.
-- Grain: at most one row (one jsonb value).
-- Parameters: %(model_version)s text.
-- Read by: recsys.cli._cmd_models_show.
SELECT to_jsonb(r) FROM model_runs AS r WHERE model_version = %(model_version)s
