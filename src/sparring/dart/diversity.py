"""Global diversity: an archive of every accepted attack, and novelty scores against it.

DART steers the red model by the diversity of attacks accepted across *all* iterations, not
within one batch. A candidate is novel when it is far from everything already accepted, both
in meaning (sentence-embedding cosine) and in wording (BLEU-2 against the closest archived
attacks).

Scaling: embeddings live in one growing float32 matrix, so the semantic check for a batch of
candidates is a single matrix product (100k archived attacks × 384 dims is 150 MB and a few
milliseconds per candidate). Lexical overlap is only computed against each candidate's
``neighbours`` nearest archived attacks by cosine: text that shares most of its bigrams with
an archived attack is also among that attack's semantic neighbours, so the few exact BLEU
computations stand in for a scan of the whole archive.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sparring.text import Matrix


class Embedder(Protocol):
    """Maps texts to L2-normalised vectors (one row per text): in production the full MiniLM
    (``sparring.text.shared_encoder()``), whose cosines the thresholds below are set for."""

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Embeddings of ``texts``, shape (len(texts), dim), rows of unit length."""
        ...


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens, punctuation split off; the unit BLEU counts in."""
    out: list[str] = []
    word = []
    for ch in text.lower():
        if ch.isalnum():
            word.append(ch)
            continue
        if word:
            out.append("".join(word))
            word = []
        if not ch.isspace():
            out.append(ch)
    if word:
        out.append("".join(word))
    return out


def _ngrams(toks: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def bleu2(candidate: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Sentence BLEU-2 of ``candidate`` against ``references`` (0 = no overlap, 1 = copy).

    Uniform weights over unigram and bigram clipped precisions, with the brevity penalty of
    the closest reference length; +1 smoothing on bigrams so short texts are not zeroed.
    """
    if not candidate or not references:
        return 0.0
    log_p = 0.0
    for n in (1, 2):
        cand = _ngrams(candidate, n)
        total = sum(cand.values())
        max_ref: Counter[tuple[str, ...]] = Counter()
        for ref in references:
            max_ref |= _ngrams(ref, n)
        clipped = sum(min(c, max_ref[g]) for g, c in cand.items())
        if n == 1:
            if clipped == 0:
                return 0.0
            log_p += 0.5 * math.log(clipped / total)
        else:
            log_p += 0.5 * math.log((clipped + 1) / (total + 1))
    closest = min((len(r) for r in references), key=lambda r: (abs(r - len(candidate)), r))
    brevity = 1.0 if len(candidate) > closest else math.exp(1 - closest / len(candidate))
    return brevity * math.exp(log_p)


@dataclass(frozen=True)
class Novelty:
    """How new a candidate is relative to the archive."""

    max_cosine: float
    """Highest cosine similarity to any archived attack (-1..1; 0 with an empty archive)."""
    max_bleu: float
    """Highest BLEU-2 against the nearest archived attacks (0..1)."""
    duplicate: bool
    """True when the exact text (after whitespace folding) is already archived."""
    novel: bool
    """True when the candidate passes both thresholds and is not a duplicate."""


@dataclass
class DiversityArchive:
    """Every accepted attack, with cached embeddings and tokens, and the novelty test.

    ``max_cosine`` and ``max_bleu`` are the acceptance thresholds (DART.md defaults 0.85
    and 0.25); ``neighbours`` bounds how many nearest attacks the BLEU check looks at.
    """

    embedder: Embedder
    max_cosine: float = 0.85
    max_bleu: float = 0.25
    neighbours: int = 16
    texts: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    _tokens: list[list[str]] = field(default_factory=list)
    _keys: set[str] = field(default_factory=set)
    _matrix: Matrix = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def embeddings(self) -> Matrix:
        """The archived embeddings, one row per archived attack."""
        return self._matrix[: len(self.texts)]

    def score(self, candidates: Sequence[str]) -> list[Novelty]:
        """Novelty of each candidate against the archive as it stands (not each other)."""
        if not candidates:
            return []
        vectors = self.embedder.encode(candidates)
        return self._score(candidates, vectors)

    def _score(self, candidates: Sequence[str], vectors: Matrix) -> list[Novelty]:
        n = len(self.texts)
        if n == 0:
            return [Novelty(0.0, 0.0, False, True) for _ in candidates]
        sims = vectors @ self.embeddings.T
        k = min(self.neighbours, n)
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        results: list[Novelty] = []
        for i, text in enumerate(candidates):
            cand_tokens = tokens(text)
            refs = [self._tokens[j] for j in nearest[i]]
            max_cos = float(sims[i].max())
            max_bleu = max(bleu2(cand_tokens, [ref]) for ref in refs)
            duplicate = _key(text) in self._keys
            novel = not duplicate and max_cos <= self.max_cosine and max_bleu <= self.max_bleu
            results.append(Novelty(max_cos, max_bleu, duplicate, novel))
        return results

    def add(self, texts: Sequence[str], cells: Sequence[str]) -> None:
        """Archive ``texts`` (with their direction cells) unconditionally."""
        if len(texts) != len(cells):
            raise ValueError("texts and cells must have the same length")
        if texts:
            self._append(list(texts), list(cells), self.embedder.encode(texts))

    def accept(self, texts: Sequence[str], cells: Sequence[str]) -> list[Novelty]:
        """Score candidates in order and archive each novel one before scoring the next, so
        two near-identical candidates in one batch are not both accepted."""
        if len(texts) != len(cells):
            raise ValueError("texts and cells must have the same length")
        if not texts:
            return []
        vectors = self.embedder.encode(texts)
        results: list[Novelty] = []
        for i, text in enumerate(texts):
            [novelty] = self._score([text], vectors[i : i + 1])
            if novelty.novel:
                self._append([text], [cells[i]], vectors[i : i + 1])
            results.append(novelty)
        return results

    def _append(self, texts: list[str], cells: list[str], vectors: Matrix) -> None:
        n, needed = len(self.texts), len(self.texts) + len(texts)
        if self._matrix.shape[0] < needed:
            grown = np.zeros(
                (max(needed, 2 * self._matrix.shape[0], 64), vectors.shape[1]), dtype=np.float32
            )
            if n:
                grown[:n] = self._matrix[:n]
            self._matrix = grown
        self._matrix[n:needed] = vectors
        self.texts.extend(texts)
        self.cells.extend(cells)
        self._tokens.extend(tokens(t) for t in texts)
        self._keys.update(_key(t) for t in texts)


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def self_bleu(texts: Sequence[str], sample: int | None = None, seed: int = 0) -> float:
    """Mean BLEU-2 of each text against all the others (0 = diverse, 1 = all alike).

    With ``sample`` set, only that many texts (chosen reproducibly) are scored, each still
    against all others; Self-BLEU over thousands of texts is otherwise quadratic.
    """
    if len(texts) < 2:
        return 0.0
    toks = [tokens(t) for t in texts]
    order = list(range(len(texts)))
    if sample is not None and sample < len(order):
        order = list(np.random.default_rng(seed).choice(len(order), size=sample, replace=False))
    scores = [bleu2(toks[i], toks[:i] + toks[i + 1 :]) for i in order]
    return float(np.mean(scores))


def mean_pairwise_cosine(vectors: Matrix) -> float:
    """Mean cosine similarity over distinct pairs of unit vectors (1 = all identical)."""
    n = int(vectors.shape[0])
    if n < 2:
        return 0.0
    total = vectors.sum(axis=0)
    # sum over all ordered pairs i != j of v_i·v_j = |Σv|² − Σ|v_i|²
    pair_sum = float(total @ total) - float((vectors * vectors).sum())
    return pair_sum / (n * (n - 1))
