-- 0010: live_lists_snapshot, a materialised copy of live_recommendations for readers that
-- want the live lists as of one moment rather than a view over the live partitions (an
-- export, a cache warm-up, a dashboard). It is refreshed by the example consumer of the
-- "went live" asset events, dags/recsys_live_lists_refresh.py, through
-- recsys.stages.live_snapshot.refresh_live_snapshot: after every publish whose lists
-- went live and every move of the serving alias, not by the nightly DAG itself.
--
-- The snapshot depends on the view: publish's CREATE OR REPLACE VIEW keeps working as
-- long as the view's columns stay these; a later migration that changes them drops and
-- recreates the snapshot. Created with the view's current rows.
CREATE MATERIALIZED VIEW live_lists_snapshot AS
SELECT model, model_version, run_date, user_id, rank, item_id, score, user_key, item_key
FROM live_recommendations;

-- one row per (model, user, rank): REFRESH ... CONCURRENTLY needs a unique index, and
-- serving-shaped reads (`WHERE model = ... AND user_id = ...`) use it
CREATE UNIQUE INDEX live_lists_snapshot_key ON live_lists_snapshot (model, user_id, rank);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recsys_reader') THEN
        EXECUTE format('GRANT SELECT ON %I.live_lists_snapshot TO recsys_reader', current_schema());
    END IF;
END
$$;
