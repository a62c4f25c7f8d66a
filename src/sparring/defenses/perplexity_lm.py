"""Token log-probabilities of plain text under a small GGUF language model, in-process with
llama.cpp: what the perplexity filter scores requests with.

One ``llama_decode`` over the whole text gives the logits at every position (the batch
asks for all of them), so scoring a request costs one forward pass of a 135M model:
milliseconds for a short request on a CPU. Texts are scored one at a time on a worker
thread (one context, behind a lock); a text longer than the context is cut to its first
``n_ctx`` tokens.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sparring.errors import ConfigError, ModelNotFoundError
from sparring.models.llamacpp import llama_library


class TokenScorer:
    """Negative log-likelihoods (nats) of each token of a text given the ones before it,
    under the GGUF model at ``path``."""

    def __init__(self, path: Path, *, n_ctx: int = 1024, n_threads: int | None = None) -> None:
        llama = self._llama = llama_library()
        params = llama.llama_model_default_params()
        params.use_extra_bufts = False  # see LlamaCppModel: crashes on Intel AMX otherwise
        self._model = llama.llama_model_load_from_file(str(path).encode(), params)
        if not self._model:
            raise ModelNotFoundError(f"llama.cpp cannot load the scoring model {path}")
        self._vocab = llama.llama_model_get_vocab(self._model)
        self._n_vocab = int(llama.llama_vocab_n_tokens(self._vocab))
        ctx_params = llama.llama_context_default_params()
        ctx_params.n_ctx = ctx_params.n_batch = ctx_params.n_ubatch = n_ctx
        if n_threads is not None:
            ctx_params.n_threads = ctx_params.n_threads_batch = n_threads
        ctx_params.no_perf = True
        self._ctx = llama.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            llama.llama_model_free(self._model)
            raise ConfigError(f"llama.cpp could not allocate a {n_ctx}-token scoring context")
        self.n_ctx = n_ctx
        self._batch = llama.llama_batch_init(n_ctx, 0, 1)
        self._lock = threading.Lock()

    def nll(self, text: str) -> npt.NDArray[np.float64]:
        """Each token's negative log-likelihood after the first (nats); empty for a text of
        fewer than two tokens."""
        llama = self._llama
        tokens = self._tokenize(text)[: self.n_ctx]
        if len(tokens) < 2:
            return np.zeros(0)
        with self._lock:
            llama.llama_memory_clear(llama.llama_get_memory(self._ctx), True)
            batch = self._batch
            batch.n_tokens = len(tokens)
            for i, token in enumerate(tokens):
                batch.token[i] = token
                batch.pos[i] = i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1
            if llama.llama_decode(self._ctx, batch) != 0:
                raise RuntimeError("llama_decode failed while scoring a text")
            pointer = llama.llama_get_logits(self._ctx)
            logits = np.ctypeslib.as_array(pointer, shape=(len(tokens), self._n_vocab))
            logits = logits[:-1].astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        chosen = logits[np.arange(len(tokens) - 1), tokens[1:]]
        nll: npt.NDArray[np.float64] = log_norm - chosen
        return nll

    async def score(self, text: str) -> npt.NDArray[np.float64]:
        """``nll`` on a worker thread."""
        return await asyncio.to_thread(self.nll, text)

    def _tokenize(self, text: str) -> list[int]:
        llama = self._llama
        data = text.encode("utf-8")
        capacity = len(data) + 2
        buf = (llama.llama_token * capacity)()
        n = llama.llama_tokenize(self._vocab, data, len(data), buf, capacity, True, False)
        return list(buf[: max(0, n)])

    async def aclose(self) -> None:
        """Free the context and the model."""
        llama: Any = self._llama
        with self._lock:
            if self._ctx:
                llama.llama_batch_free(self._batch)
                llama.llama_free(self._ctx)
                llama.llama_model_free(self._model)
                self._ctx = None


def windowed_max(nll: npt.NDArray[np.float64], window: int) -> float:
    """The highest mean NLL over ``window`` consecutive tokens (the whole text's mean when
    it is shorter), nats; 0 for no token."""
    if nll.size == 0:
        return 0.0
    if nll.size <= window:
        return float(nll.mean())
    sums = np.convolve(nll, np.ones(window), mode="valid")
    return float(sums.max() / window)
