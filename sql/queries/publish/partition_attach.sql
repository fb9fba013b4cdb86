-- publish/partition_attach: make the version's table a partition of
-- recommendation_lists, so the views recommendations and live_recommendations
-- read it. Its CHECKs (publish/staging_constraints.sql) spare the validation scan.
-- Grain: no rows: DDL.
-- Parameters: {partition}, the table's name, quoted as an identifier by the
--   caller; %(model_version)s text, the partition bound.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
ALTER TABLE recommendation_lists ATTACH PARTITION {partition} FOR VALUES IN (%(model_version)s)
