-- source/item_key_join: the join that maps a log's text or uuid item ids to the
-- internal bigint ids of item_keys (a LEFT JOIN, as source/user_key_join.sql).
-- Grain: a join fragment of source/events.sql, no rows of its own.
-- Parameters: {item_keys}, the item_keys table, quoted by the caller.
-- Read by: recsys.source.Source.relation, which composes it into every reader's query.
LEFT JOIN {item_keys} AS ik ON ik.item_key = log.item_id::text
