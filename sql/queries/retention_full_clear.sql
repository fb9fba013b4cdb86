-- retention_full_clear: drop every cell of one retention kind before a full recompute.
-- Grain: deletes rows of retention; rowcount = cells removed.
-- A DELETE of the kind rather than TRUNCATE: other kinds stay, and readers of
-- the table are not blocked by an ACCESS EXCLUSIVE lock.
-- Parameters: %(kind)s text, retention_kind ('classic').
-- Read by: recsys.retention.full_recompute.
DELETE FROM retention
WHERE retention_kind = %(kind)s;
