-- fresh/expired: hourly versions of a model whose partitions fall outside the history
-- kept: all but the %(keep)s latest hours, never the live lists nor the one just built.
-- Grain: one row per expired hourly model_version.
-- Parameters: %(model)s, %(model_version)s text; %(keep)s integer.
-- Run by: recsys.stages.publish.publish_lists (for recsys.stages.fresh), which drops
--   their partitions in the publish transaction.
SELECT f.model_version
FROM fresh_lists AS f
WHERE f.model = %(model)s
  AND f.model_version <> %(model_version)s
  AND f.model_version NOT IN (SELECT coalesce(lists_version, model_version) FROM live_models)
  AND to_regclass(quote_ident('recommendations_' || f.model || '_'
                              || lower(replace(split_part(f.model_version, '@', 2), '-', '')))) IS NOT NULL
ORDER BY f.hour_end DESC
OFFSET %(keep)s
