-- keys/assign_from_log: give every text key of the log's rows in a time range
-- that has no internal id yet its id, from the key table's identity sequence.
-- Keys are inserted in sorted order, so two nights inserting overlapping keys
-- at once wait on each other instead of deadlocking, and ON CONFLICT makes the
-- second a no-op for the keys the first added: one id per key, never reused.
-- Grain: no rows returned; one row per new key written.
-- Parameters: %(start)s, %(end)s timestamptz or NULL (NULL: no bound);
--   {keys} the key table (user_keys or item_keys), {key} its key column,
--   {column} the log's id column, {log} the log's table or view, all quoted by the caller.
-- Run by: recsys.source.assign_keys, in its own short transaction.
INSERT INTO {keys} ({key})
SELECT DISTINCT log.{column}::text
FROM {log} AS log
WHERE log.{column} IS NOT NULL
  AND (%(start)s::timestamptz IS NULL OR log.event_time >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR log.event_time < %(end)s)
ORDER BY 1
ON CONFLICT ({key}) DO NOTHING
