-- 0008: the first day retention counts (RECSYS_RETENTION_START_DATE) and the log the
-- retention tables are built from, recorded with the other settings the compact
-- retention tables are built with.
--
-- start_date NULL: the whole log counts, as before. source_table NULL: tables built
-- before it was recorded; the next refresh records its log. A refresh whose start
-- date or log differs from the recorded one is refused: `recsys retention rebuild`
-- rebuilds the tables.
ALTER TABLE retention_state ADD COLUMN start_date date, ADD COLUMN source_table text;
