-- publish/catalogue_has_expiries: whether any catalogue item has an
-- available_until, i.e. whether the lists must carry expiries for the live view.
-- Grain: one row, one boolean.
-- Parameters: none.
-- Read by: recsys.stages.publish.publish_lists.
SELECT EXISTS (SELECT 1 FROM items WHERE available_until IS NOT NULL)
