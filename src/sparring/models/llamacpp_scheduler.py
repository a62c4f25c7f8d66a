"""Continuous batching over llama.cpp's low-level API, on one worker thread.

The worker owns the llama.cpp context. Requests arrive on a queue at any time; each step the
worker admits waiting requests while a sequence slot and enough KV cells are free, then
builds ONE batch holding the next token of every decoding sequence plus as many prompt
tokens of newly admitted sequences as fit (chunked prefill), runs one ``llama_decode`` and
samples each sequence that produced logits with that sequence's own sampler chain.

Every sequence has its own KV stream of ``n_ctx`` cells (llama.cpp's non-unified cache).
A shared pool would use less memory, but there a sequence's attention runs over cells whose
layout depends on its neighbours, and greedy output drifts with the batch; with separate
streams a prompt gets the same tokens alone or among fifteen others, and no sequence can
run out of cache because of what else is in flight.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llama_cpp as llama

from sparring.types import Completion, FinishReason, GenerationParams

__all__ = ["BatchScheduler", "Request"]

_LOG = logging.getLogger(__name__)


@dataclass
class Request:
    """One conversation to answer.

    ``deliver`` is called exactly once, from the worker thread, with the Completion;
    ``cancelled`` lets the worker drop a request whose caller has gone away. ``started``
    is the ``time.perf_counter()`` reading (seconds) when the caller submitted it.
    """

    prompt: str
    params: GenerationParams
    deliver: Callable[[Completion], None]
    cancelled: Callable[[], bool]
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _Sequence:
    request: Request
    seq_id: int
    tokens: list[int]
    sampler: Any
    stops: tuple[bytes, ...]
    prefilled: int = 0
    generated: int = 0
    last_token: int = -1
    out: bytearray = field(default_factory=bytearray)
    logits_index: int = -1

    @property
    def decoding(self) -> bool:
        return self.prefilled == len(self.tokens)


class BatchScheduler:
    """Runs requests against a loaded llama.cpp context with continuous batching.

    ``n_ctx`` is the per-sequence context window (tokens), ``n_seq_max`` the sequences in
    flight at most (the context must have as many KV streams), ``n_batch`` the tokens one
    ``llama_decode`` may carry. The scheduler frees ``ctx`` when it closes.
    """

    def __init__(self, ctx: Any, vocab: Any, *, n_ctx: int, n_seq_max: int, n_batch: int) -> None:
        self._ctx = ctx
        self._vocab = vocab
        self._memory = llama.llama_get_memory(ctx)
        self.n_ctx = n_ctx
        self._n_batch = n_batch
        self._batch = llama.llama_batch_init(n_batch, 0, 1)
        self._free_ids = list(range(n_seq_max - 1, -1, -1))
        self._inbox: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._waiting: deque[Request] = deque()
        self._active: list[_Sequence] = []
        self._closing = False
        # Orders submissions against close(), so that nothing lands behind the stop marker.
        self._gate = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sparring-llamacpp", daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> None:
        """Queue a request; safe to call from any thread."""
        with self._gate:
            if not self._closing:
                self._inbox.put(request)
                return
        request.deliver(Completion.failure("model is closed"))

    def close(self) -> None:
        """Stop the worker (failing requests still queued) and free the context; blocks."""
        with self._gate:
            if self._closing:
                return
            self._closing = True
            self._inbox.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            while self._pull():
                try:
                    self._admit()
                    if self._active:
                        self._step()
                except Exception as exc:  # a bug must not leave callers waiting forever
                    _LOG.exception("llama.cpp worker step failed")
                    for seq in list(self._active):
                        self._finish(seq, "error", error=f"llama.cpp worker failed: {exc}")
        finally:
            for seq in list(self._active):
                self._finish(seq, "error", error="model closed while generating")
            for request in self._waiting:
                request.deliver(Completion.failure("model closed before this request ran"))
            self._waiting.clear()
            while not self._inbox.empty():
                late = self._inbox.get_nowait()
                if late is not None:
                    late.deliver(Completion.failure("model closed before this request ran"))
            llama.llama_batch_free(self._batch)
            llama.llama_free(self._ctx)

    def _pull(self) -> bool:
        """Move new requests into the waiting line; block while there is nothing to do.
        Returns False when the worker must stop."""
        block = not self._active and not self._waiting
        while True:
            try:
                request = self._inbox.get(block=block)
            except queue.Empty:
                return True
            if request is None:
                return False
            self._waiting.append(request)
            block = False

    def _admit(self) -> None:
        for seq in [s for s in self._active if s.request.cancelled()]:
            self._finish(seq, "error", error="cancelled")
        while self._waiting and self._free_ids:
            request = self._waiting.popleft()
            if request.cancelled():
                request.deliver(Completion.failure("cancelled"))
                continue
            tokens = _tokenize(self._vocab, request.prompt)
            failure = None
            if not tokens:
                failure = "the prompt is empty"
            elif len(tokens) >= self.n_ctx:
                failure = f"prompt of {len(tokens)} tokens exceeds context of {self.n_ctx}"
            if failure is not None:
                latency = time.perf_counter() - request.started
                request.deliver(Completion.failure(failure, latency_s=latency))
                continue
            self._active.append(
                _Sequence(
                    request=request,
                    seq_id=self._free_ids.pop(),
                    tokens=tokens,
                    sampler=_sampler(request.params),
                    stops=tuple(s.encode("utf-8") for s in request.params.stop if s),
                )
            )

    def _step(self) -> None:
        batch = self._batch
        n = 0
        in_batch: list[_Sequence] = []
        # Decoding sequences go first so that a long prefill never stalls their next token.
        for seq in self._active:
            seq.logits_index = -1
            if seq.decoding:
                pos = len(seq.tokens) + seq.generated - 1
                _put(batch, n, seq.last_token, pos, seq.seq_id, True)
                seq.logits_index = n
                n += 1
                in_batch.append(seq)
        for seq in self._active:
            if seq.decoding or n >= self._n_batch:
                continue
            take = min(self._n_batch - n, len(seq.tokens) - seq.prefilled)
            for i in range(seq.prefilled, seq.prefilled + take):
                last = i == len(seq.tokens) - 1
                _put(batch, n, seq.tokens[i], i, seq.seq_id, last)
                if last:
                    seq.logits_index = n
                n += 1
            seq.prefilled += take
            in_batch.append(seq)
        batch.n_tokens = n
        rc = llama.llama_decode(self._ctx, batch)
        if rc != 0:
            for seq in in_batch:
                self._finish(seq, "error", error=f"llama_decode failed with code {rc}")
            return
        for seq in in_batch:
            if seq.logits_index >= 0:
                self._sample(seq)

    def _sample(self, seq: _Sequence) -> None:
        token = int(llama.llama_sampler_sample(seq.sampler, self._ctx, seq.logits_index))
        seq.generated += 1
        seq.last_token = token
        if llama.llama_vocab_is_eog(self._vocab, token):
            self._finish(seq, "stop")
            return
        scan_from = len(seq.out)
        seq.out += _piece(self._vocab, token)
        for stop in seq.stops:
            at = seq.out.find(stop, max(0, scan_from - len(stop) + 1))
            if at >= 0:
                del seq.out[at:]
                self._finish(seq, "stop")
                return
        context_full = len(seq.tokens) + seq.generated >= self.n_ctx
        if context_full or seq.generated >= seq.request.params.max_tokens:
            self._finish(seq, "length")

    def _finish(self, seq: _Sequence, reason: FinishReason, error: str | None = None) -> None:
        self._active.remove(seq)
        llama.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
        llama.llama_sampler_free(seq.sampler)
        self._free_ids.append(seq.seq_id)
        latency = time.perf_counter() - seq.request.started
        if error is not None:
            seq.request.deliver(Completion.failure(error, latency_s=latency))
            return
        # An incremental decoder drops a multi-byte character cut off by max_tokens.
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(seq.out))
        seq.request.deliver(
            Completion(
                text=text,
                finish_reason=reason,
                prompt_tokens=len(seq.tokens),
                completion_tokens=seq.generated,
                latency_s=latency,
            )
        )


def _put(batch: Any, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq_id
    batch.logits[i] = 1 if logits else 0


def _sampler(params: GenerationParams) -> Any:
    chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
    if params.temperature == 0.0:
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_greedy())
        return chain
    llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_temp(params.temperature))
    if params.top_p < 1.0:
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_p(params.top_p, 1))
    # 0xFFFFFFFF asks llama.cpp for a random seed, so user seeds are folded below it.
    seed = llama.LLAMA_DEFAULT_SEED if params.seed is None else params.seed % 0xFFFFFFFF
    llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_dist(seed))
    return chain


def _tokenize(vocab: Any, text: str) -> list[int]:
    """Tokens of a rendered chat prompt; special-token text (``<|im_start|>``) is parsed as
    the special token, and BOS is added only where the model wants one and the template
    did not already write it."""
    data = text.encode("utf-8")
    capacity = len(data) + 2
    buf = (llama.llama_token * capacity)()
    n = llama.llama_tokenize(vocab, data, len(data), buf, capacity, False, True)
    if n < 0:
        capacity = -n
        buf = (llama.llama_token * capacity)()
        n = llama.llama_tokenize(vocab, data, len(data), buf, capacity, False, True)
    tokens = list(buf[:n])
    bos = int(llama.llama_vocab_bos(vocab))
    if llama.llama_vocab_get_add_bos(vocab) and bos >= 0 and (not tokens or tokens[0] != bos):
        tokens.insert(0, bos)
    return tokens


def _piece(vocab: Any, token: int) -> bytes:
    """The bytes a generated token stands for; control tokens render as nothing."""
    buf = ctypes.create_string_buffer(64)
    n = llama.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
    if n < 0:
        buf = ctypes.create_string_buffer(-n)
        n = llama.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
    return buf.raw[:n]
