-- content/encoder_newest: the newest encoder version of an encoder spec, with its fit.
-- Grain: at most one row (encoder_version, dim, artifact_path, artifact_sha256, n_fitted).
-- Parameters: %(encoder)s text, the spec ('tfidf(dim=64)', 'sentence-transformers:...').
-- Read by: recsys.stages.embed.embed_catalogue.
SELECT encoder_version, dim, artifact_path, artifact_sha256, n_fitted
FROM item_encoders
WHERE encoder = %(encoder)s
ORDER BY created_at DESC, encoder_version DESC
LIMIT 1
