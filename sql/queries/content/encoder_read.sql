-- content/encoder_read: one encoder version, as stored.
-- Grain: at most one row (encoder, dim, artifact_path, artifact_sha256, params).
-- Parameters: %(encoder_version)s text.
-- Read by: recsys.stages.embed.load_encoder.
SELECT encoder, dim, artifact_path, artifact_sha256, params FROM item_encoders
WHERE encoder_version = %(encoder_version)s
