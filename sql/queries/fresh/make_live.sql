-- fresh/make_live: serve the hour's lists, when the model they were scored with is
-- still the live one, the lists it serves are its night's own or an earlier hour's, and
-- the hour ends after that night's as-of time (a backfill of an older hour fills
-- history, never goes live). A nightly publish (publish/make_live.sql) sets
-- lists_version back to its own version, so the next night supersedes the hour.
-- Grain: one row per model in live_models; returns the lists_version when it moved,
--   no row otherwise.
-- Parameters: %(model)s, %(base_version)s, %(lists_version)s text; %(hour_end)s timestamptz.
-- Run by: recsys.stages.publish.publish_lists (for recsys.stages.fresh), in the publish
--   transaction, in place of publish/make_live.sql.
UPDATE live_models
SET lists_version = %(lists_version)s, published_at = now()
WHERE model = %(model)s
  AND model_version = %(base_version)s
  AND (lists_version IS NULL OR lists_version = model_version OR lists_version <= %(lists_version)s)
  AND %(hour_end)s > (run_date::timestamp AT TIME ZONE 'UTC')
RETURNING lists_version
