"""Cheap text features for the embedded judge's head: hashed word n-grams.

Sentence embeddings see only the opening of a response (see ``embedded.py``); the hashed
n-grams read much further, so a refusal followed by compliance, or a second role-play
persona that answers, still leaves a trace. CRC32 is the hash because it is stable across
processes and platforms (Python's ``hash`` is salted per process), so a head trained in one
process scores identically in another.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

HASH_DIMS = 16384
"""Width of the hashed n-gram vector."""

NGRAM_CHARS = 4000
"""How much of a response the n-grams read, characters."""

_TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']", re.IGNORECASE)
_LONG_RUN = 12
"""Tokens longer than this (unsegmented scripts such as Chinese) are split into character
pairs so that they still share features across responses, characters."""


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for token in _TOKEN.findall(text[:NGRAM_CHARS].lower()):
        if len(token) > _LONG_RUN:
            out.extend(token[i : i + 2] for i in range(len(token) - 1))
        else:
            out.append(token)
    return out


def hashed_ngrams(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Word unigrams and bigrams of each text, hashed into ``HASH_DIMS`` buckets.

    Counts are damped with log1p and each row is scaled to unit length, so long and short
    responses weigh alike. Shape ``(len(texts), HASH_DIMS)``.
    """
    out = np.zeros((len(texts), HASH_DIMS), dtype=np.float32)
    for row, text in enumerate(texts):
        tokens = _tokens(text)
        grams = tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
        counts: dict[int, int] = {}
        for gram in grams:
            bucket = zlib.crc32(gram.encode("utf-8")) % HASH_DIMS
            counts[bucket] = counts.get(bucket, 0) + 1
        if not counts:
            continue
        norm = math.sqrt(sum(math.log1p(c) ** 2 for c in counts.values()))
        for bucket, count in counts.items():
            out[row, bucket] = math.log1p(count) / norm
    return out
