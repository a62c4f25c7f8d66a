"""Sentence embedders: MiniLM from its package (semantic), and a hashing embedder (lexical,
dependency-free) for tests and for machines without torch."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from sparring.dart.diversity import Matrix, tokens


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
            grams = toks + [f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False)]
            for gram in grams:
                digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)
