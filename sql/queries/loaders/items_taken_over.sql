-- loaders/items_taken_over: how many of the load's items another source has
-- already described (they take this load's description; the loader warns).
-- Grain: one row, the count.
-- Parameters: none.
-- Read by: recsys.loaders.copy_writer._upsert_items, recsys.loaders.catalogue.write_catalogue.
SELECT count(*) FROM items JOIN items_load USING (item_id) WHERE items.source <> items_load.source
