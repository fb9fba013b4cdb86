-- ope/version_catalogue_size: the items of a version's training window (model_runs.n_items),
-- the catalogue its lists' exposure is measured over.
-- Grain: one row (n_items, NULL when the registry has no count), none for an unknown version.
-- Parameters: %(model_version)s text.
-- Read by: recsys.stages.ope.record_exposure.
SELECT n_items FROM model_runs WHERE model_version = %(model_version)s
