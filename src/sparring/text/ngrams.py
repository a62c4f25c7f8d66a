"""Hashed word n-grams: the one lexical featurizer.

Word unigrams and bigrams are hashed into a fixed number of buckets, counts damped with
log1p, and each row scaled to unit length, so the cosine of two rows is their weighted
n-gram overlap. The embedded judge's heads read these rows (at ``HASH_DIMS`` buckets), and
``HashingEmbedder`` offers them, narrower, wherever an embedder is needed without torch.

CRC32 is the hash because it is stable across processes and platforms (Python's ``hash`` is
salted per process), so a head trained in one process scores identically in another.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections.abc import Sequence

import numpy as np

from sparring.text.types import Matrix

HASH_DIMS = 16384
"""Default width of a hashed n-gram row, buckets (the embedded judge's)."""

NGRAM_CHARS = 4000
"""How much of a text the n-grams read by default, characters."""

_TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']", re.IGNORECASE)
_LONG_RUN = 12
"""Tokens longer than this (unsegmented scripts such as Chinese) are split into character
pairs so that they still share features across texts, characters."""


def _tokens(text: str, max_chars: int) -> list[str]:
    out: list[str] = []
    for token in _TOKEN.findall(text[:max_chars].lower()):
        if len(token) > _LONG_RUN:
            out.extend(token[i : i + 2] for i in range(len(token) - 1))
        else:
            out.append(token)
    return out


def hashed_ngrams(
    texts: Sequence[str], dims: int = HASH_DIMS, max_chars: int = NGRAM_CHARS
) -> Matrix:
    """Word unigrams and bigrams of the first ``max_chars`` characters of each text, hashed
    into ``dims`` buckets; log1p-damped counts, rows of unit length (all-zero for a text
    without tokens). Shape ``(len(texts), dims)``."""
    out = np.zeros((len(texts), dims), dtype=np.float32)
    for row, text in enumerate(texts):
        tokens = _tokens(text, max_chars)
        grams = tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
        counts: dict[int, int] = {}
        for gram in grams:
            bucket = zlib.crc32(gram.encode("utf-8")) % dims
            counts[bucket] = counts.get(bucket, 0) + 1
        if not counts:
            continue
        norm = math.sqrt(sum(math.log1p(c) ** 2 for c in counts.values()))
        for bucket, count in counts.items():
            out[row, bucket] = math.log1p(count) / norm
    return out


class HashingEmbedder:
    """``hashed_ngrams`` as an embedder: a cheap, deterministic, dependency-free stand-in for
    sentence embeddings (tests, machines without torch) that still ranks near-copies as
    nearest."""

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim
        """Width of each embedding, buckets."""

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Unit-length hashed n-gram rows (zero rows for texts without words), shape
        ``(len(texts), dim)``."""
        return hashed_ngrams(texts, dims=self.dim)
