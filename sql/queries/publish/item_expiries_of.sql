-- publish/item_expiries_of: the catalogue expiry of the items being published,
-- as text PostgreSQL reads back exactly (the publish passes it on by COPY).
-- Grain: one row per listed item with an expiry (item_id, available_until as text).
-- Parameters: %(ids)s bigint[].
-- Read by: recsys.stages.publish._list_extras.
SELECT item_id, available_until::text FROM items WHERE item_id = ANY(%(ids)s) AND available_until IS NOT NULL
