-- publish/staging_copy: load one version's lists into the staging table by
-- binary COPY. The stream comes from recsys.db.copy_binary.recommendation_list_rows,
-- whose tuples have exactly these columns, in this order.
-- Grain: no rows returned; one row per user written.
-- Parameters: {staging}, the staging table's name, quoted as an identifier by the caller.
-- Run by: recsys.stages.publish.publish_lists (cursor.copy_expert), in the publish transaction.
COPY {staging} (model, model_version, run_date, user_id, item_ids, scores) FROM STDIN WITH (FORMAT binary)
