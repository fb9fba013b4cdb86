-- ui/list_overview: what each model's live lists hold: the items listed to the
-- most users, with their titles, and how many distinct items the lists hold
-- (one list for everyone shows as few distinct items and a top item in every list).
-- Grain: one row per (model, place) for the %(top)s most listed items of each live model:
--   model, place (1 = most listed), item_key, title, topic (NULL when the catalogue
--   lacks them), lists (users whose list holds the item), distinct_items, users
--   (lists of the model).
-- Reads live_recommendations whole (one pass over the live partitions), so the
-- figures are those serving sees now: items expired since the publish are left out.
-- Parameters: %(top)s integer.
-- Read by: recsys.ui.data.list_overview (the "Live lists" panel).
WITH listed AS MATERIALIZED (
    SELECT r.model, r.item_id, r.item_key, count(*) AS lists
    FROM live_recommendations AS r
    WHERE r.model IN (SELECT m.model FROM live_models AS m)  -- not the serving aliases: their models' lists
    GROUP BY r.model, r.item_id, r.item_key
),
users AS (
    -- not the rank-1 rows: an item expired since the publish leaves a gap in its list
    SELECT r.model, count(DISTINCT r.user_id) AS users
    FROM live_recommendations AS r
    WHERE r.model IN (SELECT m.model FROM live_models AS m)
    GROUP BY r.model
),
ranked AS (
    SELECT l.model, l.item_id, l.item_key, l.lists,
           row_number() OVER (PARTITION BY l.model ORDER BY l.lists DESC, l.item_id) AS place,
           count(*) OVER (PARTITION BY l.model) AS distinct_items
    FROM listed AS l
)
SELECT k.model, k.place, k.item_key, i.title, i.topic, k.lists, k.distinct_items, u.users
FROM ranked AS k
JOIN users AS u ON u.model = k.model
LEFT JOIN items AS i ON i.item_id = k.item_id
WHERE k.place <= %(top)s
ORDER BY k.model, k.place
