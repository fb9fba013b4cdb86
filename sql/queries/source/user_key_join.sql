-- source/user_key_join: the join that maps a log's text or uuid user ids to the
-- internal bigint ids of user_keys. A LEFT JOIN: a NULL user id stays a row
-- (with a NULL id), so the extract reports it instead of losing it.
-- Grain: a join fragment of source/events.sql, no rows of its own.
-- Parameters: {user_keys}, the user_keys table, quoted by the caller.
-- Read by: recsys.source.Source.relation, which composes it into every reader's query.
LEFT JOIN {user_keys} AS uk ON uk.user_key = log.user_id::text
