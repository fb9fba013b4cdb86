-- fresh/hour_read: what an earlier run of the same hour was built from.
-- Grain: zero or one row (base_version, base_lists).
-- Parameters: %(model_version)s text, the hour's version.
-- Run by: recsys.stages.fresh.run_fresh_hour: a re-run of the hour merges into the
--   same lists with the same model, so it gives the same lists.
SELECT base_version, base_lists FROM fresh_lists WHERE model_version = %(model_version)s
