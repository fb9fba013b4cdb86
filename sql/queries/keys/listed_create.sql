-- keys/listed_create: the temporary table a loader COPYs its keys into before
-- they are given ids (keys/insert_listed.sql); dropped at the end of the transaction.
-- Grain: no rows: DDL.
-- Parameters: none.
-- Run by: recsys.source.assign_listed_keys.
CREATE TEMPORARY TABLE keys_listed (key text NOT NULL) ON COMMIT DROP
