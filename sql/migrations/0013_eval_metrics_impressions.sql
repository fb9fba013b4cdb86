-- 0013: per-impression evaluation figures (recsys.stages.evaluate): MIND's AUC, MRR and
-- nDCG@5/10 of each hold-out impression, averaged, sit in eval_metrics beside the top-K
-- figures (metrics impression_auc and impression_mrr with k 0, impression_ndcg with k 5
-- and 10). Their n_users counts the users of those impressions; n_impressions counts
-- the impressions averaged over (NULL for every figure that is not per impression).
ALTER TABLE eval_metrics ADD COLUMN n_impressions integer CHECK (n_impressions >= 0);
