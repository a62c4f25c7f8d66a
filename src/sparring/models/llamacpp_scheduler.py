"""Continuous batching over llama.cpp's low-level API, on one worker thread.

The worker owns the llama.cpp context. Requests arrive on a queue at any time; each step the
worker admits waiting requests while a sequence slot is free, then builds ONE batch holding
the next token of every decoding sequence plus as many prompt tokens of newly admitted
sequences as fit (chunked prefill), runs one ``llama_decode`` and samples each sequence that
produced logits with that sequence's own sampler chain.

Every sequence has its own KV stream of ``n_ctx`` cells (llama.cpp's non-unified cache), so
attention never mixes conversations and no sequence runs out of cache because of what else
is in flight.

Prompt prefixes are computed once (prefix reuse). A finished sequence leaves its prompt's
keys and values in its stream. A new request takes the lowest free stream and keeps the
part of it that matches its prompt; when another stream (in flight or free) holds a longer
matching prefix, that stream is copied over instead, and a request that shares a prefix
with one still being prefilled ahead of it waits a step for it. Only the rest is computed.
Scans repeat one system prompt and one attack template across many behaviors, DART samples
each prompt K times, and a conversation's next turn starts with the previous turn's prompt.
Reused keys and values were computed in another batch, and llama.cpp's sums depend on batch
shape, so a greedy reply can differ in rare tokens from one computed from scratch, as it
already can between a solo and a batched request.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
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


_MIN_COPY_TOKENS = 8
"""Shortest gain (tokens) worth copying another stream for. A copy moves the whole stream,
n_ctx cells per layer (12 KiB a cell on Qwen2.5-0.5B), which costs about what computing one
or two tokens does."""


@dataclass(eq=False)
class _Sequence:
    request: Request
    seq_id: int
    tokens: list[int]
    sampler: Any
    stops: tuple[bytes, ...]
    prefilled: int = 0
    placed: bool = False
    reply: list[int] = field(default_factory=list)
    out: bytearray = field(default_factory=bytearray)
    logits_index: int = -1

    @property
    def decoding(self) -> bool:
        return self.prefilled == len(self.tokens)

    @property
    def computed(self) -> int:
        """Tokens whose keys and values are in the stream: the prompt so far and every
        reply token but the newest, which is fed in at the next step."""
        return self.prefilled + max(0, len(self.reply) - 1)


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
        self._free_ids = list(range(n_seq_max))
        # Tokens whose keys and values a free stream still holds, by sequence id.
        self._kept: dict[int, list[int]] = {}
        self.prompt_tokens_computed = 0
        """Prompt tokens run through the model since the start (written by the worker)."""
        self.prompt_tokens_reused = 0
        """Prompt tokens whose keys and values came from an earlier prefix instead."""
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
            # The lowest free id keeps the ids in flight consecutive (see _step); a prefix
            # held by another free stream is copied over in _place.
            seq_id = min(self._free_ids)
            self._free_ids.remove(seq_id)
            reused = _shared(self._kept.pop(seq_id, ()), tokens)
            llama.llama_memory_seq_rm(self._memory, seq_id, reused, -1)
            self._active.append(
                _Sequence(
                    request=request,
                    seq_id=seq_id,
                    tokens=tokens,
                    sampler=_sampler(request.params),
                    stops=tuple(s.encode("utf-8") for s in request.params.stop if s),
                    prefilled=reused,
                )
            )

    def _step(self) -> None:
        # Placing reads what each stream holds before this step, so it runs first.
        waiting = {seq for seq in self._active if not self._place(seq)}
        # Decoding sequences take their token first so that a long prefill never stalls
        # them; the rest of the batch goes to prompts in order of arrival.
        budget = self._n_batch - sum(seq.decoding for seq in self._active)
        chunks: dict[_Sequence, int] = {}
        for seq in self._active:
            if not seq.decoding and budget > 0 and seq not in waiting:
                chunks[seq] = min(budget, len(seq.tokens) - seq.prefilled)
                budget -= chunks[seq]
        # llama.cpp runs a batch over separate KV streams as one pass per run of
        # consecutive sequence ids in batch order, so tokens go in by sequence id. In
        # arrival order, 16 decoding sequences took 16 passes (342 ms a step, not 174).
        batch = self._batch
        n = 0
        in_batch: list[_Sequence] = []
        for seq in sorted(self._active, key=lambda s: s.seq_id):
            seq.logits_index = -1
            if seq.decoding:
                _put(batch, n, seq.reply[-1], seq.computed, seq.seq_id, True)
                seq.logits_index = n
                n += 1
            elif seq in chunks:
                for i in range(seq.prefilled, seq.prefilled + chunks[seq]):
                    last = i == len(seq.tokens) - 1
                    _put(batch, n, seq.tokens[i], i, seq.seq_id, last)
                    if last:
                        seq.logits_index = n
                    n += 1
                seq.prefilled += chunks[seq]
                self.prompt_tokens_computed += chunks[seq]
            else:
                continue
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

    def _place(self, seq: _Sequence) -> bool:
        """Before a sequence's first prefill, copy in the longest prompt prefix another stream
        holds. Returns False (wait a step) while a sequence ahead of it in line is still
        computing a longer shared prefix; those ahead never wait for those behind."""
        if seq.placed:
            return True
        best, best_len, coming = -1, seq.prefilled, 0
        for other in self._active:
            if other is seq:
                break
            shared = _shared(other.tokens, seq.tokens)
            if min(shared, other.prefilled) > best_len:
                best, best_len = other.seq_id, min(shared, other.prefilled)
            coming = max(coming, shared)
        for seq_id, kept in self._kept.items():
            if (shared := _shared(kept, seq.tokens)) > best_len:
                best, best_len = seq_id, shared
        if coming >= best_len + _MIN_COPY_TOKENS:
            return False
        if best >= 0 and best_len >= seq.prefilled + _MIN_COPY_TOKENS:
            # A copy between streams moves the whole stream; the tail is then cut off.
            llama.llama_memory_seq_cp(self._memory, best, seq.seq_id, -1, -1)
            llama.llama_memory_seq_rm(self._memory, seq.seq_id, best_len, -1)
            seq.prefilled = best_len
        seq.placed = True
        self.prompt_tokens_reused += seq.prefilled
        return True

    def _sample(self, seq: _Sequence) -> None:
        token = int(llama.llama_sampler_sample(seq.sampler, self._ctx, seq.logits_index))
        seq.reply.append(token)
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
        context_full = len(seq.tokens) + len(seq.reply) >= self.n_ctx
        if context_full or len(seq.reply) >= seq.request.params.max_tokens:
            self._finish(seq, "length")

    def _finish(self, seq: _Sequence, reason: FinishReason, error: str | None = None) -> None:
        self._active.remove(seq)
        if error is None:
            # Only the prompt's cells are offered for reuse, and the reply's are dropped:
            # reply tokens were computed one per step, and a prompt that repeats them (the
            # next turn of a conversation) gets a different greedy reply from them than
            # from computing them in one prefill (measured on SmolLM2 within 10 tokens).
            llama.llama_memory_seq_rm(self._memory, seq.seq_id, seq.prefilled, -1)
            self._kept[seq.seq_id] = seq.tokens[: seq.prefilled]
        else:  # a failed decode may have left the stream half-written
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
                completion_tokens=len(seq.reply),
                latency_s=latency,
            )
        )


def _shared(cached: Sequence[int], prompt: Sequence[int]) -> int:
    """Length of the common prefix of cached tokens and a prompt, leaving the prompt's last
    token out: it must be computed anyway, for the logits of the first reply token."""
    n = 0
    for a, b in zip(cached, prompt, strict=False):
        if a != b:
            break
        n += 1
    return min(n, len(prompt) - 1)


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
