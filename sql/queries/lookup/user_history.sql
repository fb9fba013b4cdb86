-- lookup/user_history: what one user did most recently in the log, newest first, with
-- the catalogue's titles: beside their live lists, so a person can judge the lists.
-- Grain: one row per event of an active type (event_time, event_type, item_key, item_id,
--   value, title, topic); item_id and the catalogue's columns are NULL for an item the
--   key map or the catalogue does not know.
-- Parameters: %(types)s text[]: the event types that count as the user acting (RECSYS_ACTIVE_EVENT_TYPES
--   and the declared positive types); %(limit)s int.
--   Composed in: {log} the configured log; {user_match} the condition on log.user_id, which binds
--   `user` (the user as the log names them: its text key, or an integer id);
--   {value} log.value or NULL; {item_join} the key map join for text item ids (or nothing);
--   {item_id} the internal item id.
-- Read by: `recsys recommend --history`, the Recsys page's "Live lists" panel.
-- Run by: recsys.lookup.user_history. With an index on the log's (user_id, event_time)
--   (the built-in interactions table has one) this reads only the user's newest rows.
WITH recent AS (
    SELECT log.event_time, log.event_type, log.item_id::text AS item_key, {value} AS value
    FROM {log} AS log
    WHERE {user_match} AND log.event_type = ANY(%(types)s)
    ORDER BY log.event_time DESC
    LIMIT %(limit)s
)
SELECT recent.event_time, recent.event_type, recent.item_key, {item_id} AS item_id, recent.value,
       catalogue.title, catalogue.topic
FROM recent
{item_join}
LEFT JOIN items AS catalogue ON catalogue.item_id = {item_id}
ORDER BY recent.event_time DESC
