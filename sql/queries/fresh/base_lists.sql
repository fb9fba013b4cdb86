-- fresh/base_lists: every user's list in one version's partition, as stored (expired
-- items included: the live view drops them when read, and the merged lists do the same).
-- Grain: one row per user (user_id, item_ids, scores), by user_id.
-- Parameters: {table}, the partition's name, quoted as an identifier by the caller.
-- Run by: recsys.stages.fresh.run_fresh_hour, the lists the hour's new items merge into.
SELECT user_id, item_ids, scores FROM {table} ORDER BY user_id
