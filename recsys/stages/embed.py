"""Embed stage: the catalogue's content vectors in `item_vectors` (migration 0012).

`embed_catalogue` brings the vectors of the configured encoder (RECSYS_CONTENT_ENCODER,
`recsys.models.content`) up to date with `items`, in one transaction under an advisory
lock:

* Which space. An encoder version is one vector space. A sentence-transformers model is
  one fixed space (its version: a digest of its files). The TF-IDF + SVD encoder is fitted
  on the catalogue; its fit is saved under `<artifact_dir>/encoders/` and recorded in
  `item_encoders`. It is refitted, which makes a new version, when there is no stored fit
  (or its file is gone), when forced, or when the catalogue items whose current text was
  not part of the fit exceed RECSYS_CONTENT_REFIT_SHARE of the items with text. Otherwise
  the stored fit transforms the new items, so their vectors sit in the space the models
  were trained in (the hourly job of issue #19 needs exactly that).
* Which items. Within a version, only items without a vector or whose text changed
  (sha256 of title, category and body) are encoded; a new version encodes every item.
  Vectors of items that lost their text are deleted; a deleted item takes its vectors
  with it (foreign key). Vectors of older versions stay, for the models trained on them.

`load_vectors` and `load_encoder` read them back: the hybrid model (`recsys.stages.train_hybrid`)
and, later, the hourly job, which embeds the hour's items with the live model's encoder version.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import ConfigurationError, ModelFitError
from recsys.models.content import (ST_PREFIX, Encoder, TfidfEncoder, encoder_spec, item_text,
                                   load_sentence_transformer, text_hash)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedManifest:
    """What one embedding did: the version now current, whether it is a new fit, and the item counts."""

    encoder: str
    encoder_version: str
    dim: int
    refitted: bool
    items_with_text: int
    embedded: int
    unchanged: int
    removed: int
    seconds: float


def embed_catalogue(settings: Settings, force_refit: bool = False) -> EmbedManifest:
    """Bring `item_vectors` of the configured encoder up to date with `items` (see the module doc).

    Raises:
        ConfigurationError: the encoder's library, package or model folder is missing.
        ModelFitError: too little text to fit TF-IDF on, or a stored fit whose checksum changed.
    """
    started = time.perf_counter()
    content = settings.content
    spec = encoder_spec(content.encoder, content.dim)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, ["items", "item_vectors", "item_encoders"])
        cur.execute(load_sql("content/lock"))
        cur.execute(load_sql("content/catalogue_texts"))
        texts = {item_id: item_text(title, topic, body) for item_id, title, topic, body in cur.fetchall()}
        texts = {item_id: text for item_id, text in texts.items() if text}
        hashes = {item_id: text_hash(text) for item_id, text in texts.items()}
        cur.execute(load_sql("content/encoder_newest"), {"encoder": spec})
        newest = cur.fetchone()
        stored: dict[int, tuple[str, bool]] = {}
        if newest is not None:
            cur.execute(load_sql("content/vectors_state"), {"encoder_version": newest[0]})
            stored = {item_id: (digest, in_fit) for item_id, digest, in_fit in cur.fetchall()}

        encoder: Encoder
        refitted = False
        if content.encoder.startswith(ST_PREFIX):
            encoder = load_sentence_transformer(content.encoder[len(ST_PREFIX):])
        else:
            outside = sum(1 for item_id, digest in hashes.items() if stored.get(item_id) != (digest, True))
            reason = _refit_reason(settings, newest, outside, len(hashes), force_refit)
            if reason is None:
                encoder = TfidfEncoder.load(Path(newest[2]), expected_sha256=newest[3])
            else:
                ids = sorted(texts)
                encoder = TfidfEncoder(content.dim, settings.gate_seed).fit([texts[i] for i in ids])
                refitted = True
                logger.info("refitted the TF-IDF encoder (%s): %s", encoder.version, reason)
        version = encoder.version
        artifact_path = sha = None
        if refitted:
            artifact_path, sha = encoder.save(Path(settings.artifact_dir) / "encoders" / version.rsplit("@", 1)[1])
        if newest is None or newest[0] != version or refitted:
            cur.execute(load_sql("content/encoder_record"), {
                "encoder_version": version, "encoder": spec, "dim": encoder.dim,
                "artifact_path": str(artifact_path) if artifact_path else None, "artifact_sha256": sha,
                "n_fitted": len(texts) if refitted else 0,
                "params": json.dumps({"setting": content.encoder, **getattr(encoder, "meta", {})})})
        if newest is None or newest[0] != version:
            cur.execute(load_sql("content/vectors_state"), {"encoder_version": version})
            stored = {item_id: (digest, in_fit) for item_id, digest, in_fit in cur.fetchall()}
        # a new or changed text, or (after a refit) a vector that was not part of the fit
        todo = sorted(i for i, digest in hashes.items()
                      if stored.get(i, ("",))[0] != digest or (refitted and not stored[i][1]))
        vectors = encoder.encode([texts[i] for i in todo])
        if not np.isfinite(vectors).all():
            raise ModelFitError(f"encoder {version} gave NaN/inf vectors: nothing stored")
        # an item embedded by a fresh fit was part of it; one transformed by a stored fit was not
        in_fit = [refitted or not encoder.fitted] * len(todo)
        write_vectors(cur, version, spec, todo, [hashes[i] for i in todo], vectors, in_fit)
        cur.execute(load_sql("content/vectors_prune"), {"encoder_version": version, "keep": sorted(texts)})
        removed = cur.rowcount
    manifest = EmbedManifest(spec, version, encoder.dim, refitted, len(texts), len(todo), len(texts) - len(todo),
                             removed, round(time.perf_counter() - started, 3))
    logger.info("embedded %d of %d catalogue items with %s (%d unchanged, %d removed) in %.2fs", len(todo),
                len(texts), version, manifest.unchanged, removed, manifest.seconds)
    return manifest


def _refit_reason(settings: Settings, newest: tuple | None, outside: int, with_text: int,
                  force: bool) -> str | None:
    """Why the TF-IDF space is refitted tonight, or None to transform with the stored fit."""
    if force:
        return "forced"
    if newest is None:
        return "no stored fit"
    if not newest[2] or not Path(newest[2]).exists():
        return f"the fit of {newest[0]} is gone ({newest[2]})"
    share = outside / max(with_text, 1)
    if share > settings.content.refit_share:
        return (f"{outside} of {with_text} items with text ({share:.1%}) are outside the fit of {newest[0]}, above "
                f"RECSYS_CONTENT_REFIT_SHARE={settings.content.refit_share}")
    return None


def write_vectors(cur, version: str, spec: str, item_ids: list[int], hashes: list[str], vectors: np.ndarray,
                  in_fit: list[bool]) -> None:
    """COPY the vectors (float32 little-endian bytes) into a temporary table and upsert them under `version`."""
    if not item_ids:
        return
    cur.execute(load_sql("content/vectors_load_create"))
    buffer = io.StringIO()
    little = np.ascontiguousarray(vectors, dtype="<f4")
    for item_id, digest, row, fit in zip(item_ids, hashes, little, in_fit):
        # bytea in COPY's text format: \x<hex>, its backslash escaped
        buffer.write(f"{item_id}\t{digest}\t\\\\x{row.tobytes().hex()}\t{'t' if fit else 'f'}\n")
    buffer.seek(0)
    cur.copy_expert("COPY vectors_load (item_id, text_hash, vector, in_fit) FROM STDIN", buffer)
    cur.execute(load_sql("content/vectors_upsert"), {"encoder_version": version, "encoder": spec})


def load_vectors(settings: Settings, encoder_version: str, as_of: datetime | None = None,
                 item_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids sorted, (n, dim) float32 vectors) of `encoder_version`: every catalogue item with a
    vector, or only those published by `as_of` (NULL published_at counts as published), or only `item_ids`."""
    ids = None if item_ids is None else [int(i) for i in item_ids]
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("content/vectors_read"), {"encoder_version": encoder_version, "as_of": as_of,
                                                      "ids": ids})
        rows = cur.fetchall()
    if not rows:
        return np.empty(0, np.int64), np.empty((0, 0), np.float32)
    out_ids = np.array([row[0] for row in rows], dtype=np.int64)
    vectors = np.stack([np.frombuffer(bytes(row[1]), dtype="<f4") for row in rows]).astype(np.float32)
    return out_ids, vectors


def load_encoder(settings: Settings, encoder_version: str) -> Encoder:
    """The encoder of a stored version, to embed items into its space (the hourly job's new items).

    Raises:
        ConfigurationError: no such version, or its model is no longer where it was.
        ModelFitError: its fit's file changed since it was recorded.
    """
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("content/encoder_read"), {"encoder_version": encoder_version})
        row = cur.fetchone()
    if row is None:
        raise ConfigurationError(f"item_encoders.encoder_version: no encoder {encoder_version!r}")
    spec, _dim, path, sha, _params = row
    encoder: Encoder
    if spec.startswith(ST_PREFIX):
        encoder = load_sentence_transformer(spec[len(ST_PREFIX):])
    else:
        if not path or not Path(path).exists():
            raise ConfigurationError(f"item_encoders.artifact_path of {encoder_version}: {path} is gone")
        encoder = TfidfEncoder.load(Path(path), expected_sha256=sha)
    if encoder.version != encoder_version:
        raise ConfigurationError(f"item_encoders: {encoder_version} now loads as {encoder.version} (the model "
                                 "changed): its vectors are of another space")
    return encoder
