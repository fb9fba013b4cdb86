-- cli/item_titles: the catalogue titles of some items, to print beside a list.
-- Grain: one row per item that has a title (item_id, title).
-- Parameters: %(item_ids)s bigint[]: internal item ids.
-- Read by: recsys.cli._cmd_recommend.
SELECT item_id, title FROM items WHERE item_id = ANY(%(item_ids)s) AND title IS NOT NULL
