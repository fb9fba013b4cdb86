-- gate/decision_record: record the gate's decision in the version's
-- model_runs.metrics (key 'gate'), and mark a rejected version 'rejected'.
-- Grain: one row of model_runs updated; no rows returned.
-- Parameters: %(decision)s jsonb, the GateDecision as an object; %(accepted)s
--   boolean; %(model_version)s text.
-- Run by: recsys.stages.gate.decide.
UPDATE model_runs
SET metrics = metrics || jsonb_build_object('gate', %(decision)s::jsonb),
    status = CASE WHEN %(accepted)s THEN status ELSE 'rejected' END
WHERE model_version = %(model_version)s
