-- source/events: the configured log as every stage reads it: bigint ids (text or
-- uuid keys mapped through user_keys / item_keys), and a NULL for each optional
-- column the log does not have. Used in place of {source} by the readers
-- (FROM {source} AS src), so they need not know the log's shape; a log with
-- integer ids and every column is read directly instead (recsys.source).
-- Grain: one row per event of the log.
-- Parameters: {log}, the log's table or view; {user_id}, {item_id}, {value},
--   {session_id}, {model_version}, {propensity}: the expressions for each
--   column; {joins}: the key-map joins (source/user_key_join.sql,
--   source/item_key_join.sql), or nothing.
-- Read by: recsys.source.Source.relation, which composes it into every reader's query.
(SELECT log.event_time, {user_id} AS user_id, {item_id} AS item_id, log.event_type::text AS event_type,
        {value} AS value, {session_id} AS session_id, {model_version} AS model_version,
        {propensity} AS propensity
 FROM {log} AS log
 {joins})
