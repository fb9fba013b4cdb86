-- retention/source_without_model_version: the configured log with a NULL
-- model_version added, for a source that has none; used in place of {source}
-- in the retention queries, so their per-model parts find nothing to attribute.
-- Grain: one row per event of the source.
-- Parameters: {source}, the source table or view, quoted as an identifier by the caller.
-- Read by: recsys.stages.retention._prepare (a fragment, composed into the
--   queries that read the log).
(SELECT *, NULL::text AS model_version FROM {source})
