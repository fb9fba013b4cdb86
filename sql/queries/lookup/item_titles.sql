-- lookup/item_titles: what the catalogue says of some items, to show beside a list.
-- Grain: one row per item the catalogue has (item_id, title, topic; either may be NULL).
-- Parameters: %(item_ids)s bigint[]: internal item ids.
-- Read by: recsys.lookup.user_list (`recsys recommend`, the Recsys page's live lists).
SELECT item_id, title, topic FROM items WHERE item_id = ANY(%(item_ids)s)
