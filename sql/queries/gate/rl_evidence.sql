-- gate/rl_evidence: what an RL candidate's gate reads as evidence: the exposure of its
-- lists (recsys.stages.ope.record_exposure) and whether it has an off-policy estimate.
-- Grain: one row: distinct_items, exposure_gini, top_item_share, users (NULL when the
--   OPE step wrote none), dr_return (the DR estimate of its D1 return rate, NULL: none).
-- Parameters: %(model_version)s text; %(k)s integer.
-- Read by: recsys.stages.gate._decide_evidence.
SELECT
    (SELECT e.value   FROM eval_metrics e WHERE e.model_version = %(model_version)s AND e.subject = 'model'
        AND e.metric = 'distinct_items' AND e.k = %(k)s) AS distinct_items,
    (SELECT e.value   FROM eval_metrics e WHERE e.model_version = %(model_version)s AND e.subject = 'model'
        AND e.metric = 'exposure_gini' AND e.k = %(k)s) AS exposure_gini,
    (SELECT e.value   FROM eval_metrics e WHERE e.model_version = %(model_version)s AND e.subject = 'model'
        AND e.metric = 'top_item_share' AND e.k = %(k)s) AS top_item_share,
    (SELECT e.n_users FROM eval_metrics e WHERE e.model_version = %(model_version)s AND e.subject = 'model'
        AND e.metric = 'distinct_items' AND e.k = %(k)s) AS users,
    (SELECT e.value   FROM eval_metrics e WHERE e.model_version = %(model_version)s AND e.subject = 'ope'
        AND e.metric = 'dr_return' AND e.k = %(k)s) AS dr_return
