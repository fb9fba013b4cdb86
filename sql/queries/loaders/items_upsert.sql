-- loaders/items_upsert: write the load's items from items_load; an item already
-- described (by any source) takes the new description and source.
-- Grain: one row per item_id in items; no rows returned.
-- Parameters: none.
-- Run by: recsys.loaders.copy_writer._upsert_items.
INSERT INTO items (item_id, title, topic, attributes, source)
SELECT item_id, title, topic, attributes, source FROM items_load
ON CONFLICT (item_id) DO UPDATE
SET title = EXCLUDED.title, topic = EXCLUDED.topic,
    attributes = EXCLUDED.attributes, source = EXCLUDED.source
