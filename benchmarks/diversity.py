"""Novelty scoring speed against archives of 1k, 10k and 100k attacks.

The archive is filled with synthetic attack texts and random unit embeddings (what is timed
is the search, not the embedding model), then a batch of 64 candidates is scored: one
matrix product for cosine, BLEU-2 against each candidate's nearest neighbours.

    python benchmarks/diversity.py
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from sparring.dart.diversity import DiversityArchive
from sparring.text import Matrix

DIM = 384
WORDS = [
    "please",
    "explain",
    "describe",
    "pretend",
    "story",
    "roleplay",
    "decode",
    "base64",
    "ignore",
    "rules",
    "write",
    "poem",
    "as",
    "a",
    "the",
    "in",
]


class RandomEmbedder:
    """Random unit vectors: stands in for MiniLM so that only the search is timed."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def encode(self, texts: Sequence[str]) -> Matrix:
        v = self.rng.normal(size=(len(texts), DIM)).astype(np.float32)
        unit: Matrix = v / np.linalg.norm(v, axis=1, keepdims=True)
        return unit


def synthetic_texts(n: int, rng: np.random.Generator) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(8, 30)))) + f" #{i}" for i in range(n)]


def main() -> None:
    rng = np.random.default_rng(0)
    candidates = synthetic_texts(64, rng)
    print(f"{'archive':>8} {'batch':>5} {'ms/batch':>9} {'ms/candidate':>13} {'matrix MB':>10}")
    for size in (1_000, 10_000, 100_000):
        archive = DiversityArchive(RandomEmbedder(1))
        archive.add(synthetic_texts(size, rng), ["c|s"] * size)
        archive.score(candidates)  # warm-up
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            archive.score(candidates)
            runs.append(time.perf_counter() - start)
        ms = 1000 * float(np.median(runs))
        mb = archive.embeddings.nbytes / 1e6
        per = ms / len(candidates)
        print(f"{size:>8} {len(candidates):>5} {ms:>9.1f} {per:>13.2f} {mb:>10.0f}")


if __name__ == "__main__":
    main()
