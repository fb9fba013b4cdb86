-- content/vectors_read: the vectors of one encoder version, of catalogue items published
-- by a time (NULL: any), optionally only of some items.
-- Grain: one row per item (item_id, vector as float32 bytes), by item_id.
-- Parameters: %(encoder_version)s text; %(as_of)s timestamptz or NULL; %(ids)s bigint[] or NULL.
-- Read by: recsys.stages.embed.load_vectors.
SELECT v.item_id, v.vector
FROM item_vectors AS v
JOIN items AS i USING (item_id)
WHERE v.encoder_version = %(encoder_version)s
  AND (%(as_of)s::timestamptz IS NULL OR i.published_at IS NULL OR i.published_at <= %(as_of)s::timestamptz)
  AND (%(ids)s::bigint[] IS NULL OR v.item_id = ANY(%(ids)s::bigint[]))
ORDER BY v.item_id
