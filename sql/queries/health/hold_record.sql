-- health/hold_record: say in a version's registry row what data health did to its publish
-- (model_runs.metrics key 'health'), and mark it 'rejected' when it is held.
-- Grain: one row of model_runs updated; no rows returned.
-- Parameters: %(health)s jsonb: held checks, reasons, and whether force_publish overrode
--   them; %(held)s boolean, the publish does not go ahead; %(model_version)s text.
-- Run by: recsys.stages.health.health_hold.
UPDATE model_runs
SET metrics = metrics || jsonb_build_object('health', %(health)s::jsonb),
    status = CASE WHEN %(held)s THEN 'rejected' ELSE status END
WHERE model_version = %(model_version)s
