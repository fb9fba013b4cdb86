-- score/unavailable_items: catalogue items that may not be recommended at a
-- time: expired (available_until at or before it) or not yet released
-- (available_from after it). Items without bounds, or not in the catalogue, are available.
-- Grain: one row per unavailable item (item_id).
-- Parameters: %(as_of)s timestamptz, the night's as-of time.
-- Read by: recsys.stages.score.unavailable_items.
SELECT item_id FROM items WHERE available_until <= %(as_of)s OR available_from > %(as_of)s
