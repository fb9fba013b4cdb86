-- loaders/catalogue_upsert: merge the load's items from items_load into items.
-- A new item is inserted; an item already there (from any source) takes the
-- load's key and source, and the columns the load carries; a column the load
-- does not carry (its has_ flag false) keeps the stored value. Rows go in item_id
-- order, so two loads meeting the same items wait instead of deadlocking.
-- Grain: one row per item of items_load written to items; no rows returned
-- (rowcount = items written).
-- Parameters: %(has_title)s, %(has_topic)s, %(has_body)s, %(has_published_at)s,
--   %(has_available_from)s, %(has_available_until)s, %(has_attributes)s boolean:
--   whether the load carries that column.
-- Run by: recsys.loaders.catalogue.write_catalogue (recsys load items, recsys load mind).
INSERT INTO items AS i (item_id, item_key, title, topic, body, published_at, available_from, available_until,
                        attributes, source)
SELECT item_id, item_key, title, topic, body, published_at, available_from, available_until, attributes, source
FROM items_load
ORDER BY item_id
ON CONFLICT (item_id) DO UPDATE
SET item_key        = EXCLUDED.item_key,
    title           = CASE WHEN %(has_title)s THEN EXCLUDED.title ELSE i.title END,
    topic           = CASE WHEN %(has_topic)s THEN EXCLUDED.topic ELSE i.topic END,
    body            = CASE WHEN %(has_body)s THEN EXCLUDED.body ELSE i.body END,
    published_at    = CASE WHEN %(has_published_at)s THEN EXCLUDED.published_at ELSE i.published_at END,
    available_from  = CASE WHEN %(has_available_from)s THEN EXCLUDED.available_from ELSE i.available_from END,
    available_until = CASE WHEN %(has_available_until)s THEN EXCLUDED.available_until ELSE i.available_until END,
    attributes      = CASE WHEN %(has_attributes)s THEN EXCLUDED.attributes ELSE i.attributes END,
    source          = EXCLUDED.source
