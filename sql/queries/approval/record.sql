-- approval/record: say in a version's registry row what the approval of its publish was
-- (model_runs.metrics key 'approval'), and mark it 'rejected' when it was not approved.
-- Grain: one row of model_runs updated; no rows returned.
-- Parameters: %(approval)s jsonb: why it was asked, the outcome, who answered and when;
--   %(approved)s boolean, the publish goes ahead; %(model_version)s text.
-- Run by: recsys.stages.approval.record_answer.
UPDATE model_runs
SET metrics = metrics || jsonb_build_object('approval', %(approval)s::jsonb),
    status = CASE WHEN %(approved)s THEN status ELSE 'rejected' END
WHERE model_version = %(model_version)s
