-- fresh/record: register (or, on a re-run of the hour, replace) an hourly version.
-- Grain: one row per hourly version in fresh_lists; no rows returned.
-- Parameters: %(model_version)s, %(model)s, %(base_version)s, %(base_lists)s text;
--   %(run_date)s date; %(hour_start)s, %(hour_end)s timestamptz; %(new_items)s, %(users)s integer.
-- Run by: recsys.stages.publish.publish_lists (for recsys.stages.fresh), in the publish transaction.
INSERT INTO fresh_lists (model_version, model, base_version, base_lists, run_date, hour_start, hour_end,
                         new_items, users)
VALUES (%(model_version)s, %(model)s, %(base_version)s, %(base_lists)s, %(run_date)s, %(hour_start)s,
        %(hour_end)s, %(new_items)s, %(users)s)
ON CONFLICT (model_version) DO UPDATE SET
    base_version = EXCLUDED.base_version, base_lists = EXCLUDED.base_lists, run_date = EXCLUDED.run_date,
    new_items = EXCLUDED.new_items, users = EXCLUDED.users, created_at = now()
