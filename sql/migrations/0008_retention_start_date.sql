-- 0008: the first day retention counts (RECSYS_RETENTION_START_DATE), recorded
-- with the other settings the compact retention tables are built with.
--
-- NULL: the whole log counts, as before. A refresh whose setting differs from
-- the recorded one is refused: `recsys retention rebuild` rebuilds the tables.
ALTER TABLE retention_state ADD COLUMN start_date date;
