"""Text features at the ground floor: MiniLM sentence embeddings (one loader) and hashed
word n-grams (one featurizer). Imports nothing of sparring above ``errors``."""

from sparring.text.minilm import (
    ENCODER_PACKAGE,
    MINILM_LAYERS,
    MINILM_TOKENS,
    SentenceEncoder,
    shared_encoder,
)
from sparring.text.ngrams import HASH_DIMS, NGRAM_CHARS, HashingEmbedder, hashed_ngrams
from sparring.text.types import Matrix

__all__ = [
    "ENCODER_PACKAGE",
    "HASH_DIMS",
    "MINILM_LAYERS",
    "MINILM_TOKENS",
    "NGRAM_CHARS",
    "HashingEmbedder",
    "Matrix",
    "SentenceEncoder",
    "hashed_ngrams",
    "shared_encoder",
]
