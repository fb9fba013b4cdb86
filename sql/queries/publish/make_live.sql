-- Point serving at a freshly attached version, unless a newer as-of date is
-- already live (a backfill of an older date fills history, never goes live).
-- Grain: one row per model. Parameters: %(model)s, %(model_version)s, %(run_date)s.
-- Runs in the publish transaction, after ATTACH PARTITION. Read by the
-- live_recommendations view.
INSERT INTO live_models AS live (model, model_version, run_date, published_at)
VALUES (%(model)s, %(model_version)s, %(run_date)s, now())
ON CONFLICT (model) DO UPDATE SET
    model_version = EXCLUDED.model_version,
    run_date      = EXCLUDED.run_date,
    published_at  = EXCLUDED.published_at
WHERE live.run_date <= EXCLUDED.run_date
RETURNING model_version
