-- publish/staging_fill_keys: the lists of numeric_lists with what serving reads
-- beside the ids: the user's and each item's key in the log (when the log's ids
-- are text; from user_keys / item_keys) and each item's available_until (when
-- the catalogue sets any), so the live view needs no join.
-- Grain: no rows returned; one row per user written into the staging table.
-- Parameters: %(user_keyed)s, %(item_keyed)s, %(expiries)s booleans: which of
--   the three to fill (the others stay NULL); {staging}, the staging table,
--   quoted by the caller.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
INSERT INTO {staging} (model, model_version, run_date, user_id, item_ids, scores, user_key, item_keys, item_expires)
SELECT n.model, n.model_version, n.run_date, n.user_id, n.item_ids, n.scores,
       CASE WHEN %(user_keyed)s THEN (SELECT k.user_key FROM user_keys AS k WHERE k.user_id = n.user_id) END,
       CASE WHEN %(item_keyed)s THEN
           (SELECT array_agg(k.item_key ORDER BY u.position)
            FROM unnest(n.item_ids) WITH ORDINALITY AS u (item_id, position)
            LEFT JOIN item_keys AS k ON k.item_id = u.item_id)
       END,
       CASE WHEN %(expiries)s THEN
           (SELECT array_agg(c.available_until ORDER BY u.position)
            FROM unnest(n.item_ids) WITH ORDINALITY AS u (item_id, position)
            LEFT JOIN items AS c ON c.item_id = u.item_id)
       END
FROM numeric_lists AS n
