-- content/catalogue_texts: what the encoder reads of every catalogue item.
-- Grain: one row per item of the catalogue (item_id, title, topic, body), by item_id.
-- Parameters: none.
-- Read by: recsys.stages.embed.embed_catalogue.
SELECT item_id, title, topic, body FROM items ORDER BY item_id
