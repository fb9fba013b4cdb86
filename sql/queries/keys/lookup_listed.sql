-- keys/lookup_listed: the internal id of every key listed in keys_listed.
-- Grain: one row per listed key that has an id (key, id).
-- Parameters: {keys} the key table, {key} its key column, {id} its id column, quoted by the caller.
-- Run by: recsys.source.assign_listed_keys, after keys/insert_listed.sql.
SELECT k.{key}, k.{id} FROM {keys} AS k JOIN keys_listed AS listed ON listed.key = k.{key}
