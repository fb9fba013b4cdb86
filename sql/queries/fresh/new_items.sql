-- fresh/new_items: catalogue items whose availability starts in the hour and that are
-- still available at its end, with their text.
-- Grain: one row per item (item_id, title, topic, body), by item_id.
-- Parameters: %(hour_start)s, %(hour_end)s timestamptz: the hour [start, end).
-- Run by: recsys.stages.fresh.run_fresh_hour. An item's availability starts at
--   available_from, or at published_at when it has no available_from.
SELECT item_id, title, topic, body
FROM items
WHERE coalesce(available_from, published_at) >= %(hour_start)s
  AND coalesce(available_from, published_at) < %(hour_end)s
  AND (available_until IS NULL OR available_until > %(hour_end)s)
ORDER BY item_id
