-- One evaluation figure of a model version. Grain: (model_version, subject,
-- metric, k). The caller deletes the version's earlier figures in the same
-- transaction, so a re-run replaces them. Read by analysts and the UI.
INSERT INTO eval_metrics (model_version, subject, metric, k, value, n_users)
VALUES (%(model_version)s, %(subject)s, %(metric)s, %(k)s, %(value)s, %(n_users)s)
