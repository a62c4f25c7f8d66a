"""In-process llama.cpp backend: any GGUF chat model, continuously batched on the CPU.

Concurrent ``generate`` calls share one worker thread (see ``llamacpp_scheduler``), so
aggregate tokens/s grows with the number of conversations in flight. The chat template
comes from the GGUF metadata and is rendered with jinja2, as transformers does.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import weakref
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sparring.errors import ConfigError, MissingPackageError, ModelNotFoundError
from sparring.models.backends import ModelSpec, backend
from sparring.models.base import ChatModel
from sparring.models.llamacpp_lora import adapter_digest, load_lora, set_loras
from sparring.types import Completion, GenerationParams, Message

if TYPE_CHECKING:
    from sparring.models.options import ModelOptions

# llama.cpp's OpenMP threads spin while they wait for each other by default. On a machine
# whose cores are shared (a judge, a server, other jobs), that spinning starves the very
# threads it waits for: a 135M model took 67 s for 32 tokens under load, 1.6 s with passive
# waiting. libgomp reads this once, when llama_cpp is first imported (lazily, after this
# line); a user's own value wins (OMP_WAIT_POLICY=ACTIVE on a dedicated machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = [
    "ChatTemplate",
    "LlamaCppModel",
    "TemplateFailure",
    "build_builtin_model",
    "build_gguf_model",
    "llama_library",
]

_LLAMA_LOG = logging.getLogger(f"{__name__}.native")
_PREFILL_BATCH_TOKENS = 512
_LLAMA_MAX_SEQ = 256  # llama.cpp's compile-time bound on sequences per context

#: The llama_cpp module, imported by the first model built (so that sparring imports
#: without it and a missing package is reported as one clear line).
llama: Any = None
_native_log_callback: Any = None


def _route_native_log(level: int, text: bytes, user_data: Any) -> None:
    # llama.cpp narrates every load and decode on stderr; keep it for whoever asks for DEBUG.
    if _LLAMA_LOG.isEnabledFor(logging.DEBUG):
        _LLAMA_LOG.debug("%s", text.decode("utf-8", "replace").rstrip("\n"))


def _init_llama() -> None:
    """Process-wide set-up, once: import, quiet log callback, backend init."""
    global llama, _native_log_callback
    if llama is not None:
        return
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingPackageError("the llama.cpp backend", "llama-cpp-python==0.3.36") from exc
    # Importing llama_cpp installs a callback that prints to stderr; replace it. The ctypes
    # wrapper lives in a module global because llama.cpp calls it long after this returns.
    _native_log_callback = llama_cpp.llama_log_callback(_route_native_log)
    llama_cpp.llama_log_set(_native_log_callback, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    llama = llama_cpp


def llama_library() -> Any:
    """The llama_cpp module, set up once for the process (its native log quieted), for
    other in-process uses of llama.cpp such as scoring text; MissingPackageError without
    it."""
    _init_llama()
    return llama


class LlamaCppModel(ChatModel):
    """A GGUF chat model run in this process by llama.cpp.

    ``n_ctx`` is each conversation's context window (prompt + reply, tokens); ``n_threads``
    the CPU threads (default: all cores); ``n_seq_max`` the conversations decoded together
    at most. Each of them has its own KV cache of ``n_ctx`` cells, allocated up front:
    about ``n_ctx * n_seq_max`` times 12 KiB for Qwen2.5-0.5B (768 MiB at the defaults).
    ``lora`` lists LoRA adapter GGUFs (path, scale) applied on top of the quantised base
    weights, e.g. those written by ``sparring.train.export_gguf_adapter``; a scale of 1.0
    applies an adapter as trained. ``extra_buffers`` lets llama.cpp repack the weights for
    CPU-specific kernels (its "extra" buffer types); it is off by default because
    llama-cpp-python 0.3.36 crashes with it on Intel CPUs with AMX (see
    benchmarks/generation.py --extra-buffers for what it gains elsewhere). The model is
    loaded once, here; ``aclose()`` frees it.
    A prompt prefix computed for an earlier request (a shared system prompt or template) is
    reused rather than computed again; ``prompt_token_totals`` counts both kinds.
    """

    def __init__(
        self,
        path: Path,
        *,
        model_id: str,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_seq_max: int = 16,
        lora: Sequence[tuple[Path, float]] = (),
        extra_buffers: bool = False,
    ) -> None:
        from sparring.models.llamacpp_scheduler import BatchScheduler

        _init_llama()
        if n_ctx < 16 or not 1 <= n_seq_max <= _LLAMA_MAX_SEQ:
            raise ConfigError(
                f"{model_id}: n_ctx must be >= 16 and n_seq_max between 1 and {_LLAMA_MAX_SEQ}"
            )
        self.id = model_id
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"{model_id}: GGUF file not found: {self.path}")
        threads = n_threads or os.cpu_count() or 1
        model_params = llama.llama_model_default_params()
        # On Intel Xeons with AMX, llama-cpp-python 0.3.36 puts the weights in its AMX "extra"
        # buffer type and then segfaults inside llama_decode; the plain CPU buffer works on
        # every CPU, so repacking into extra buffer types is opt-in. What it forgoes was not
        # measurable on an AMD EPYC with AVX-512 (benchmarks/generation.py --extra-buffers:
        # 1.0x at 1 and 16 in flight; llama.cpp repacks 28 of Qwen2.5-0.5B's 463 MiB there).
        model_params.use_extra_bufts = extra_buffers
        model = llama.llama_model_load_from_file(str(self.path).encode(), model_params)
        if not model:
            raise ModelNotFoundError(
                f"{model_id}: llama.cpp cannot load {self.path}; check that it is a GGUF model "
                "supported by llama-cpp-python 0.3.36"
            )
        try:
            vocab = llama.llama_model_get_vocab(model)
            self._template = ChatTemplate.from_model(model, vocab, model_id, self.path)
            ctx_params = llama.llama_context_default_params()
            ctx_params.n_ctx = n_ctx * n_seq_max
            ctx_params.n_seq_max = n_seq_max
            # One KV stream per sequence: attention never mixes conversations. Matrix
            # products still sum in an order that depends on the batch size, so a greedy
            # reply can differ in rare tokens between a solo and a batched request
            # (measured: 14 vs 16 unsafe of 150 greedy replies in two identical DART runs).
            ctx_params.kv_unified = False
            ctx_params.n_batch = ctx_params.n_ubatch = _PREFILL_BATCH_TOKENS
            ctx_params.n_threads = ctx_params.n_threads_batch = threads
            ctx_params.no_perf = True
            ctx = llama.llama_init_from_model(model, ctx_params)
            if not ctx:
                raise ConfigError(
                    f"{model_id}: llama.cpp could not allocate {n_seq_max} KV caches of "
                    f"{n_ctx} tokens; lower the n_ctx model option or free memory"
                )
            try:
                set_loras(ctx, [(load_lora(model, Path(p)), scale) for p, scale in lora])
            except BaseException:
                llama.llama_free(ctx)
                raise
            self._n_ctx = min(n_ctx, int(llama.llama_n_ctx_seq(ctx)))
            self._scheduler: BatchScheduler | None = BatchScheduler(
                ctx, vocab, n_ctx=self._n_ctx, n_seq_max=n_seq_max, n_batch=_PREFILL_BATCH_TOKENS
            )
        except BaseException:
            llama.llama_model_free(model)
            raise
        stamp = self.path.stat()
        self._cache_identity = " ".join(
            [
                model_id,
                f"gguf={self.path.resolve()}:{stamp.st_size}:{stamp.st_mtime_ns}",
                f"n_ctx={self._n_ctx}",
                f"extra_buffers={extra_buffers}",
                *(f"lora={adapter_digest(Path(p))}*{scale:g}" for p, scale in lora),
            ]
        )
        # A model dropped without aclose() still stops its worker and frees llama.cpp memory.
        self._finalizer = weakref.finalize(self, _release, self._scheduler, model)

    @property
    def cache_identity(self) -> str:
        """The spec, the GGUF file (resolved path, size in bytes, mtime in ns: a cheap
        stand-in for its content), n_ctx, extra_buffers, and each LoRA adapter by content
        (SHA-256) and scale."""
        return self._cache_identity

    @property
    def n_ctx(self) -> int:
        """Context window of each conversation, tokens."""
        return self._n_ctx

    @property
    def prompt_token_totals(self) -> tuple[int, int]:
        """(prompt tokens computed, prompt tokens reused from a cached prefix) since load."""
        if self._scheduler is None:
            return 0, 0
        return self._scheduler.prompt_tokens_computed, self._scheduler.prompt_tokens_reused

    def render(self, conversation: Sequence[Message]) -> str:
        """The prompt text the model sees for ``conversation`` (chat template applied)."""
        return self._template.render(conversation)

    async def generate(
        self, conversations: Sequence[Sequence[Message]], params: GenerationParams
    ) -> list[Completion]:
        """Answer each conversation; all of them join the running batch at once."""
        scheduler = self._scheduler
        if scheduler is None:
            return [Completion.failure("model is closed") for _ in conversations]
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Completion]] = []
        for conversation in conversations:
            future: asyncio.Future[Completion] = loop.create_future()
            futures.append(future)
            try:
                prompt = self.render(conversation)
            except TemplateFailure as exc:
                future.set_result(Completion.failure(str(exc)))
                continue
            scheduler.submit(_make_request(prompt, params, loop, future))
        # Cancelling this call cancels the futures, and the worker then drops their sequences.
        return list(await asyncio.gather(*futures))

    async def aclose(self) -> None:
        """Stop the worker thread (waiting for the step in progress) and free the model."""
        if self._scheduler is None:
            return
        self._scheduler = None
        await asyncio.to_thread(self._finalizer)


def _release(scheduler: Any, model: Any) -> None:
    scheduler.close()
    llama.llama_model_free(model)


def _make_request(
    prompt: str,
    params: GenerationParams,
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Completion],
) -> Any:
    from sparring.models.llamacpp_scheduler import Request

    def settle(completion: Completion) -> None:
        if not future.done():
            future.set_result(completion)

    def deliver(completion: Completion) -> None:
        try:
            loop.call_soon_threadsafe(settle, completion)
        except RuntimeError:  # the caller's loop is gone; nobody is waiting any more
            return

    return Request(prompt=prompt, params=params, deliver=deliver, cancelled=future.done)


class TemplateFailure(Exception):
    """A conversation the chat template refuses; ``generate`` returns it as a failure."""


def _raise_exception(message: str) -> NoReturn:
    raise TemplateFailure(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class ChatTemplate:
    """A chat template rendered as transformers renders it: sandboxed jinja2 with trimmed
    blocks, the generation prompt added. A template without a system role (it raises)
    gets the system text folded into the first user turn instead."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        self._template = env.from_string(source)
        self._bos = bos_token
        self._eos = eos_token

    @classmethod
    def from_model(cls, model: Any, vocab: Any, model_id: str, path: Path) -> ChatTemplate:
        """The template in the GGUF metadata (``tokenizer.chat_template``)."""
        source = llama.llama_model_chat_template(model, None)
        if not source:
            raise ConfigError(
                f"{model_id}: {path} has no tokenizer.chat_template in its metadata; "
                "use a chat (instruct) model"
            )
        try:
            return cls(
                source.decode("utf-8"),
                bos_token=_special_text(vocab, int(llama.llama_vocab_bos(vocab))),
                eos_token=_special_text(vocab, int(llama.llama_vocab_eos(vocab))),
            )
        except jinja2.TemplateError as exc:
            raise ConfigError(f"{model_id}: the chat template in {path} is invalid: {exc}") from exc

    def render(self, conversation: Sequence[Message]) -> str:
        """The prompt text for ``conversation``; raises TemplateFailure when the template
        rejects it."""
        messages = [{"role": m.role, "content": m.content} for m in conversation]
        try:
            return self._render(messages)
        except (TemplateFailure, jinja2.TemplateError) as exc:
            if not messages or messages[0]["role"] != "system":
                raise TemplateFailure(f"chat template rejected the conversation: {exc}") from exc
        # Some templates (Gemma, Mistral) have no system role: fold it into the first turn.
        system, rest = messages[0]["content"], messages[1:]
        if rest and rest[0]["role"] == "user":
            rest[0] = {"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}
        else:
            rest.insert(0, {"role": "user", "content": system})
        try:
            return self._render(rest)
        except (TemplateFailure, jinja2.TemplateError) as exc:
            raise TemplateFailure(f"chat template rejected the conversation: {exc}") from exc

    def _render(self, messages: list[dict[str, str]]) -> str:
        return self._template.render(
            messages=messages,
            add_generation_prompt=True,
            bos_token=self._bos,
            eos_token=self._eos,
        )


def _special_text(vocab: Any, token: int) -> str:
    if token < 0:
        return ""
    buf = ctypes.create_string_buffer(128)
    n = llama.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
    return buf.raw[: max(n, 0)].decode("utf-8", "replace")


@backend("builtin", description="a packaged zoo model run by llama.cpp", local=True)
def build_builtin_model(spec: ModelSpec, options: ModelOptions) -> LlamaCppModel:
    """The zoo model ``spec.name`` (verified, assembled on first use) in llama.cpp."""
    from sparring.models import zoo

    return _build(zoo.gguf_path(spec.name), spec, options)


@backend("llamacpp", description="any GGUF chat model file run by llama.cpp", local=True)
def build_gguf_model(spec: ModelSpec, options: ModelOptions) -> LlamaCppModel:
    """The GGUF file at path ``spec.name`` (``~`` expanded) in llama.cpp."""
    path = Path(spec.name).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"llamacpp model file not found: {path}")
    return _build(path, spec, options)


def _build(path: Path, spec: ModelSpec, options: ModelOptions) -> LlamaCppModel:
    return LlamaCppModel(
        path,
        model_id=str(spec),
        n_ctx=options.n_ctx,
        n_threads=options.n_threads,
        lora=[(Path(a.path).expanduser(), a.scale) for a in options.adapters],
        extra_buffers=options.extra_buffers,
    )
