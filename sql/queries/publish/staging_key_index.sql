-- publish/staging_key_index: the index serving by the log's own user key probes
-- (serving/top_k_by_key.sql). Its expression is live_recommendations' user_key
-- column, so a lookup on that column through the view uses it. Built only on
-- lists whose log has text user ids: an integer log is served by user_id.
-- Grain: no rows: DDL.
-- Parameters: {index} and {staging}, quoted as identifiers by the caller.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
CREATE UNIQUE INDEX {index} ON {staging} ((coalesce(user_key, user_id::text)))
