-- content/lock: one embedding of the catalogue at a time (two nights, a night and the
-- hourly job), held to the end of the transaction that writes the vectors.
-- Grain: one row (the lock's void result).
-- Parameters: none.
-- Run by: recsys.stages.embed.embed_catalogue.
SELECT pg_advisory_xact_lock(hashtext('recsys.item_vectors'))
