-- content/encoder_record: record an encoder version; a version already there (the same
-- fit again) is made the newest of its spec.
-- Grain: one row of item_encoders inserted or touched; no rows returned.
-- Parameters: %(encoder_version)s, %(encoder)s text; %(dim)s integer; %(artifact_path)s,
--   %(artifact_sha256)s text (NULL: nothing fitted); %(n_fitted)s integer; %(params)s jsonb.
-- Run by: recsys.stages.embed.embed_catalogue.
INSERT INTO item_encoders (encoder_version, encoder, dim, artifact_path, artifact_sha256, n_fitted, params)
VALUES (%(encoder_version)s, %(encoder)s, %(dim)s, %(artifact_path)s, %(artifact_sha256)s, %(n_fitted)s, %(params)s)
ON CONFLICT (encoder_version) DO UPDATE
SET artifact_path = EXCLUDED.artifact_path, artifact_sha256 = EXCLUDED.artifact_sha256,
    n_fitted = EXCLUDED.n_fitted, params = EXCLUDED.params, created_at = now()
