-- 0012: item content vectors (issue #19), kept with the catalogue.
--
-- An encoder (recsys.content) turns an item's text (title, category, body) into a
-- vector. item_encoders records each fitted encoder: a TF-IDF + truncated SVD fit of
-- the catalogue (its fit saved as an artifact, so later items are transformed in the
-- same space) or a sentence-transformers model (nothing fitted). encoder_version names
-- one space: a refit is a new version, which re-embeds every item; within a version
-- only new items and items whose text changed (text_hash) are embedded again.
CREATE TABLE item_encoders (
    encoder_version text        PRIMARY KEY,          -- '<encoder>@<sha256 of the fit, 12 hex>'
    encoder         text        NOT NULL,             -- the setting's spec: 'tfidf(dim=64)', 'sentence-transformers:<model>'
    dim             integer     NOT NULL CHECK (dim > 0),
    artifact_path   text,                             -- the fitted encoder (NULL: nothing fitted)
    artifact_sha256 text,
    n_fitted        integer     NOT NULL DEFAULT 0,   -- catalogue items the fit read
    params          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX item_encoders_newest ON item_encoders (encoder, created_at DESC);

-- One vector per item and encoder version: dim float32 values, little-endian, L2-normalised.
-- in_fit: the item's text (this text_hash) was part of the encoder's fit; the share of
-- items outside the fit decides when the TF-IDF space is refitted (RECSYS_CONTENT_REFIT_SHARE).
CREATE TABLE item_vectors (
    item_id         bigint      NOT NULL REFERENCES items (item_id) ON DELETE CASCADE,
    encoder_version text        NOT NULL REFERENCES item_encoders (encoder_version) ON DELETE CASCADE,
    encoder         text        NOT NULL,
    text_hash       text        NOT NULL,             -- sha256 of the text the encoder read
    vector          bytea       NOT NULL,
    in_fit          boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (encoder_version, item_id)
);
CREATE INDEX item_vectors_item ON item_vectors (item_id);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recsys_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$I.item_encoders, %1$I.item_vectors TO recsys_reader', current_schema());
    END IF;
END
$$;
