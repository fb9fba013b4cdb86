-- retention/cells_per_kind: how many retention cells each kind has, for the
-- summary of a full recompute (which rewrote every cell).
-- Grain: one row per retention_kind present in retention (a kind with no cell has none).
-- Parameters: none.
-- Read by: recsys.stages.retention.full_recompute (in recsys.stages.retention._write_full).
SELECT retention_kind, count(*) FROM retention GROUP BY 1
