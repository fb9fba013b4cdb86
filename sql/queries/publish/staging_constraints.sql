-- publish/staging_constraints: CHECKs matching the partition bound the table
-- will be attached with, so ATTACH PARTITION skips its validation scan and the
-- planner can skip other versions' partitions.
-- Grain: no rows: DDL.
-- Parameters: {staging}, {version_check}, {model_check}: the table's and the two
--   constraints' names, quoted as identifiers by the caller; %(model_version)s
--   and %(model)s text, the version and model every row must carry.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
ALTER TABLE {staging}
    ADD CONSTRAINT {version_check} CHECK (model_version IS NOT NULL AND model_version = %(model_version)s),
    ADD CONSTRAINT {model_check} CHECK (model = %(model)s)
