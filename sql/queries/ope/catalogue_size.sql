-- ope/catalogue_size: how many items the catalogue holds, the size of the pool
-- the logged exploration drew from (the caller takes the larger of it and the
-- items the lists and the log name).
-- Grain: one row, the count.
-- Parameters: none.
-- Read by: recsys.stages.ope._catalogue_size.
SELECT count(*) FROM items
