-- content/vectors_state: what is stored for one encoder version, to tell new and changed items.
-- Grain: one row per item with a vector of the version (item_id, text_hash, in_fit).
-- Parameters: %(encoder_version)s text.
-- Read by: recsys.stages.embed.embed_catalogue.
SELECT item_id, text_hash, in_fit FROM item_vectors WHERE encoder_version = %(encoder_version)s
