-- keys/insert_listed: give the keys listed in the temporary table keys_listed
-- (loaded by COPY) an internal id where they have none. Sorted inserts and
-- ON CONFLICT as in keys/assign_from_log.sql; keys/lookup_listed.sql then reads
-- the ids in a new statement, which also sees keys a concurrent load committed.
-- Grain: no rows returned; one row per new key written.
-- Parameters: {keys} the key table, {key} its key column, quoted by the caller.
-- Run by: recsys.source.assign_listed_keys (the catalogue loaders).
INSERT INTO {keys} ({key})
SELECT DISTINCT listed.key FROM keys_listed AS listed ORDER BY 1
ON CONFLICT ({key}) DO NOTHING
