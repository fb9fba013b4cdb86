-- loaders/items_load_create: a temporary table shaped like items, which the
-- load's items are copied into before they are upserted (items is keyed by
-- item_id alone, and COPY cannot upsert). Dropped at commit.
-- Grain: no rows: DDL. The table will hold one row per item of the load.
-- Parameters: none.
-- Run by: recsys.loaders.copy_writer._upsert_items, recsys.loaders.catalogue.write_catalogue.
CREATE TEMP TABLE items_load (LIKE items INCLUDING DEFAULTS) ON COMMIT DROP
