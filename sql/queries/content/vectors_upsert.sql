-- content/vectors_upsert: write the copied vectors of new and changed items under a version.
-- Grain: one row of item_vectors per row of vectors_load; no rows returned.
-- Parameters: %(encoder_version)s, %(encoder)s text.
-- Run by: recsys.stages.embed.write_vectors.
INSERT INTO item_vectors (item_id, encoder_version, encoder, text_hash, vector, in_fit)
SELECT item_id, %(encoder_version)s, %(encoder)s, text_hash, vector, in_fit FROM vectors_load
ORDER BY item_id
ON CONFLICT (encoder_version, item_id) DO UPDATE
SET text_hash = EXCLUDED.text_hash, vector = EXCLUDED.vector, in_fit = EXCLUDED.in_fit, updated_at = now()
