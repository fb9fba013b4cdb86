-- 0003: a least-privilege role for the serving side and analysts' dashboards.
-- recsys_reader may read the live lists (and the metric tables), nothing else,
-- and cannot write anywhere. It is NOLOGIN: grant it to a login role, e.g.
--   CREATE ROLE serving LOGIN PASSWORD '...' IN ROLE recsys_reader;
-- The pipeline's own role needs no superuser rights: it owns the schema it
-- creates; creating this role needs CREATEROLE (or run this migration once as
-- an administrator). Roles are cluster-wide, so it is created only if missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recsys_reader') THEN
        CREATE ROLE recsys_reader NOLOGIN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO recsys_reader', current_schema());
    -- the view runs with its owner's rights, so no grant on the partitions is needed
    EXECUTE format('GRANT SELECT ON %I.live_recommendations TO recsys_reader', current_schema());
    EXECUTE format('GRANT SELECT ON %1$I.live_models, %1$I.model_runs, %1$I.eval_metrics, %1$I.retention,'
                   ' %1$I.engagement, %1$I.model_retention TO recsys_reader', current_schema());
END
$$;
