"""transformers backend: the trainable, white-box target that DART fine-tunes.

``HFModel`` wraps an already-loaded causal LM and its tokenizer (``model`` and
``tokenizer`` stay public, so a LoRA adapter can be attached to ``model`` or a peft model
can be wrapped anew with ``HFModel(peft_model, tokenizer, model_id=...)``).
``HFModel.from_spec`` loads one from a local folder, a ``.gguf`` file (dequantised by
transformers), the zoo's GGUF (``builtin/NAME``) or a hub name.

Generation runs on one dedicated worker thread, so the event loop stays free and calls are
serialised. Conversations from concurrent ``generate`` calls wait in one queue and are
decoded together in left-padded batches of up to ``batch_size``; each row carries its own
decoding settings, so requests with different parameters still share a batch. Decoding is
a hand-written loop over the KV cache rather than ``model.generate``: that gives per-row
seeded sampling (reproducible whatever else shares the batch), per-row stop strings and
token limits, and drops finished rows from the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparring.errors import ConfigError
from sparring.models.backends import ModelSpec, backend
from sparring.models.base import ChatModel
from sparring.models.hf_loading import load_pretrained
from sparring.models.hf_sampling import pick_next_tokens, row_generator
from sparring.types import Completion, FinishReason, GenerationParams, Message

if TYPE_CHECKING:
    import torch

    from sparring.models.options import ModelOptions

__all__ = ["DEFAULT_BATCH_SIZE", "HFModel", "build_hf_model"]

DEFAULT_BATCH_SIZE = 8
"""Conversations decoded together at most; see benchmarks/hf_generation.py for the choice."""


@dataclass
class _Call:
    """One ``generate`` call: where its rows' completions are collected."""

    seq: int
    started: float
    results: list[Completion | None]
    cancelled: bool = False


@dataclass
class _Row:
    """One conversation waiting to be decoded."""

    call: _Call
    index: int
    messages: list[dict[str, str]]
    params: GenerationParams
    prompt_ids: list[int] = field(default_factory=list)
    prepared: bool = False


@dataclass
class _Decoded:
    """What decoding produced for one row before it becomes a Completion."""

    text: str
    finish_reason: FinishReason
    completion_tokens: int


class HFModel(ChatModel):
    """A transformers causal LM behind the ChatModel interface.

    Build it from an already-loaded pair (e.g. after attaching LoRA) with
    ``HFModel(model, tokenizer, model_id=...)`` or load one with ``from_spec``.
    ``batch_size`` bounds the conversations decoded together; ``max_context`` (tokens)
    bounds prompt plus answer and defaults to the model's ``max_position_embeddings``.

    Whoever changes the weights in place (a training step) should hold ``lock``: generation
    holds it for each batch, so no batch sees half-updated weights.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_context: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"{model_id}: batch_size must be at least 1, got {batch_size}")
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                f"{model_id}: the tokenizer has no chat template; use an instruct/chat model "
                "or set tokenizer.chat_template"
            )
        self.id = model_id
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_context = max_context or _max_positions(model)
        self.lock = threading.RLock()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        generation_config = getattr(model, "generation_config", None)
        if generation_config is not None and generation_config.pad_token_id is None:
            # Set so that anyone calling model.generate (or a trainer) gets no pad warning.
            generation_config.pad_token_id = tokenizer.pad_token_id
        self._end_ids = _end_token_ids(model, tokenizer)
        # Only the last position's logits are needed; computing the rest would cost a
        # (batch x prompt x vocabulary) tensor, gigabytes for Qwen's 152k-token vocabulary.
        self._forward_kwargs = {"logits_to_keep": 1} if _keeps_last_logits(model) else {}
        self._pending: list[_Row] = []
        self._queue_lock = threading.Lock()
        self._calls = itertools.count()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparring-hf")
        self._closed = False

    @classmethod
    def from_spec(
        cls,
        name: str,
        *,
        model_id: str,
        device: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_context: int | None = None,
    ) -> HFModel:
        """Load ``hf/NAME``: a model folder, a ``.gguf`` file, ``builtin/ZOO_NAME`` or a hub
        name. ``device`` is ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``; weights
        are float32 on CPU and bfloat16 on CUDA.

        Raises ModelNotFoundError for a missing file, folder or hub model,
        MissingPackageError without torch/transformers, ConfigError for a bad device.
        """
        model, tokenizer = load_pretrained(name, model_id=model_id, device=device)
        return cls(
            model, tokenizer, model_id=model_id, batch_size=batch_size, max_context=max_context
        )

    @property
    def cache_identity(self) -> str:
        """The spec, where the weights came from (``name_or_path``), and the device type
        and dtype they run in. Weights changed in place (training) are not seen here: give
        the trained model its own ``model_id``."""
        weights: torch.Tensor = next(self.model.parameters())
        source = getattr(self.model, "name_or_path", "")
        return f"{self.id} weights={source} on={weights.device.type} dtype={weights.dtype}"

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        weights: torch.Tensor = next(self.model.parameters())
        return weights.device

    async def generate(
        self, conversations: Sequence[Sequence[Message]], params: GenerationParams
    ) -> list[Completion]:
        """Answer each conversation (batched with any concurrent callers'); see the class."""
        call = _Call(next(self._calls), time.perf_counter(), [None] * len(conversations))
        if self._closed:
            return [Completion.failure(f"{self.id} is closed; load it again") for _ in call.results]
        rows = [
            _Row(call, i, [{"role": m.role, "content": m.content} for m in conv], params)
            for i, conv in enumerate(conversations)
        ]
        with self._queue_lock:
            self._pending.extend(rows)
        loop = asyncio.get_running_loop()
        try:
            # The job drains the whole queue, our rows included, before it returns.
            await loop.run_in_executor(self._executor, self._drain)
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        done = [c for c in call.results if c is not None]
        if len(done) != len(call.results):
            raise RuntimeError(f"{self.id}: a queued conversation was never decoded")
        return done

    async def aclose(self) -> None:
        """Finish the batch in progress and stop the worker thread."""
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, True)

    def _drain(self) -> None:
        while True:
            with self._queue_lock:
                rows = [r for r in self._pending if not r.call.cancelled]
                self._pending = []
            if not rows:
                return
            ready = [r for r in rows if r.prepared or self._prepare(r)]
            # Oldest call first so none starves; shortest prompts together to pad less.
            ready.sort(key=lambda r: (r.call.seq, len(r.prompt_ids)))
            batch, rest = ready[: self.batch_size], ready[self.batch_size :]
            with self._queue_lock:
                self._pending = rest + self._pending
            if batch:
                self._decode_and_deliver(batch)

    def _prepare(self, row: _Row) -> bool:
        """Tokenize a row's prompt; deliver a failure and return False when it cannot run."""
        try:
            text = self.tokenizer.apply_chat_template(
                row.messages, tokenize=False, add_generation_prompt=True
            )
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        except Exception as exc:  # templates raise anything; the failure is this request's
            self._deliver(row, error=f"chat template failed: {_one_line(exc)}")
            return False
        if not ids:
            self._deliver(row, error="the chat template rendered an empty prompt")
            return False
        if len(ids) >= self.max_context:
            self._deliver(
                row,
                error=f"prompt is {len(ids)} tokens; {self.id} holds at most "
                f"{self.max_context} tokens (prompt and answer); shorten the conversation",
            )
            return False
        row.prompt_ids, row.prepared = ids, True
        return True

    def _decode_and_deliver(self, batch: list[_Row]) -> None:
        try:
            with self.lock:
                decoded = self._decode(batch)
        except Exception as exc:  # e.g. out of memory: fail these rows, keep serving
            for row in batch:
                self._deliver(row, error=f"generation failed: {_one_line(exc)}")
            return
        for row, out in zip(batch, decoded, strict=True):
            self._deliver(row, out)

    def _deliver(self, row: _Row, out: _Decoded | None = None, error: str = "") -> None:
        latency = time.perf_counter() - row.call.started
        if out is None:
            row.call.results[row.index] = Completion.failure(error, latency_s=latency)
            return
        row.call.results[row.index] = Completion(
            text=out.text,
            finish_reason=out.finish_reason,
            prompt_tokens=len(row.prompt_ids),
            completion_tokens=out.completion_tokens,
            latency_s=latency,
        )

    def _decode(self, rows: list[_Row]) -> list[_Decoded]:
        import torch

        device = self.device
        ids, mask = _left_padded([r.prompt_ids for r in rows], self.tokenizer.pad_token_id)
        ids, mask = ids.to(device), mask.to(device)
        # Left padding shifts prompts right; positions must count real tokens only.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        limits = [min(r.params.max_tokens, self.max_context - len(r.prompt_ids)) for r in rows]
        generators = [row_generator(r.params) for r in rows]
        generated: list[list[int]] = [[] for _ in rows]
        results: list[_Decoded | None] = [None] * len(rows)
        active = list(range(len(rows)))
        with _eval_mode(self.model), torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **self._forward_kwargs,
            )
            next_pos = positions[:, -1:] + 1
            while True:
                picks = pick_next_tokens(
                    out.logits[:, -1, :],
                    [rows[i].params for i in active],
                    [generators[i] for i in active],
                )
                keep: list[int] = []
                for j, (i, token) in enumerate(zip(active, picks, strict=True)):
                    results[i] = self._step(rows[i], generated[i], token, limits[i])
                    if results[i] is None:
                        keep.append(j)
                if not keep:
                    break
                cache = out.past_key_values
                if len(keep) < len(active):
                    # Finished rows leave the batch so later steps do not compute them.
                    index = torch.tensor(keep, device=device)
                    cache.batch_select_indices(index)
                    mask, next_pos = mask[index], next_pos[index]
                active = [active[j] for j in keep]
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                out = self.model(
                    input_ids=torch.tensor([[generated[i][-1]] for i in active], device=device),
                    attention_mask=mask,
                    position_ids=next_pos,
                    past_key_values=cache,
                    use_cache=True,
                    **self._forward_kwargs,
                )
                next_pos = next_pos + 1
        return [r for r in results if r is not None]

    def _step(self, row: _Row, generated: list[int], token: int, limit: int) -> _Decoded | None:
        """Append ``token`` to a row; return its result when the row is finished."""
        if token in self._end_ids:
            return _Decoded(self._text(generated), "stop", len(generated))
        generated.append(token)
        if row.params.stop:
            text = self._text(generated)
            cuts = [c for c in (text.find(s) for s in row.params.stop) if c >= 0]
            if cuts:
                return _Decoded(text[: min(cuts)], "stop", len(generated))
        if len(generated) >= limit:
            return _Decoded(self._text(generated), "length", len(generated))
        return None

    def _text(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens, skip_special_tokens=True))


def _left_padded(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of shape (rows, longest prompt), padded on the left so
    that every row's next token goes in the same last column."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt) :] = torch.tensor(prompt)
        mask[i, width - len(prompt) :] = 1
    return ids, mask


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Eval mode (no dropout) while generating; a model mid-training goes back to train."""
    was_training = bool(model.training)
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def _end_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Token ids that end an answer: the tokenizer's EOS and the generation config's."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(config_eos, int):
        ids.add(config_eos)
    elif isinstance(config_eos, list | tuple):
        ids.update(int(t) for t in config_eos)
    if not ids:
        raise ConfigError("hf model: the tokenizer has no EOS token; set tokenizer.eos_token")
    return frozenset(ids)


def _keeps_last_logits(model: Any) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (peft forwards it to its base)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def _max_positions(model: Any) -> int:
    config = getattr(model, "config", None)
    value = getattr(config, "max_position_embeddings", None)
    if not isinstance(value, int):
        raise ConfigError("hf model: config has no max_position_embeddings; pass max_context")
    return value


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@backend(
    "hf",
    description="transformers: a model folder, GGUF file, hub name or builtin/NAME",
    local=True,
)
def build_hf_model(spec: ModelSpec, options: ModelOptions) -> HFModel:
    """``hf/NAME`` loaded by transformers on ``options.device``."""
    return HFModel.from_spec(spec.name, model_id=str(spec), device=options.device)
