-- publish/make_live: point serving at the version being published, unless a
-- newer as-of date is already live (a backfill of an older date fills history,
-- never goes live).
-- Grain: one row per model in live_models; returns the model_version when the
-- pointer moved, no row when a newer date stays live.
-- Parameters: %(model)s text, %(model_version)s text, %(run_date)s date.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction, once
--   the staging table is filled, indexed and constrained, and before it is
--   renamed and attached: ATTACH PARTITION comes later in the same transaction,
--   so no reader sees the pointer without its partition. publish_lists then
--   redefines live_recommendations over each model's live partition, the view
--   serving/top_k.sql reads.
INSERT INTO live_models AS live (model, model_version, run_date, published_at, lists_version)
VALUES (%(model)s, %(model_version)s, %(run_date)s, now(), %(model_version)s)
ON CONFLICT (model) DO UPDATE SET
    model_version = EXCLUDED.model_version,
    -- the night's own lists serve again: they supersede the hourly ones (recsys.stages.fresh)
    lists_version = EXCLUDED.lists_version,
    run_date      = EXCLUDED.run_date,
    published_at  = EXCLUDED.published_at
WHERE live.run_date <= EXCLUDED.run_date
RETURNING model_version
