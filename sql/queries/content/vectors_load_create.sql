-- content/vectors_load_create: a temporary table the new vectors are copied into (COPY),
-- dropped at the end of the transaction.
-- Grain: one table; no rows returned.
-- Parameters: none.
-- Run by: recsys.stages.embed.write_vectors.
CREATE TEMPORARY TABLE vectors_load (
    item_id   bigint  NOT NULL,
    text_hash text    NOT NULL,
    vector    bytea   NOT NULL,
    in_fit    boolean NOT NULL
) ON COMMIT DROP
