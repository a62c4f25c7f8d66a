"""Run a llama.cpp model with LoRA adapters exported by ``export_gguf_adapter``.

llama.cpp loads an adapter against a loaded model (``llama_adapter_lora_init``) and applies
adapters per context (``llama_set_adapters_lora``, which replaced ``llama_set_adapter_lora``
in this version), so the quantised base weights stay as they are and the LoRA product is
added at run time. An adapter lives as long as its model: llama.cpp frees it with the model.

``load_lora`` and ``set_loras`` work on raw llama.cpp handles, for a backend that owns
them to call between loading the model and decoding. ``attach_lora`` applies adapters to
an existing ``LlamaCppModel`` from outside; it reaches into the private context handle of
that class's scheduler and is meant to be replaced by a constructor argument of
``LlamaCppModel``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sparring.errors import ConfigError, MissingPackageError, ModelNotFoundError
from sparring.models.llamacpp import LlamaCppModel

__all__ = ["attach_lora", "load_lora", "set_loras"]


def _llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingPackageError("LoRA adapters in llama.cpp", "llama-cpp-python==0.3.36") from exc
    return llama_cpp


def load_lora(model: Any, path: Path) -> Any:
    """Load the adapter GGUF at ``path`` for the loaded llama.cpp ``model`` handle.

    Raises ModelNotFoundError for a missing file, ConfigError when llama.cpp rejects it
    (another architecture, tensors the model lacks, wrong shapes).
    """
    llama = _llama()
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"LoRA adapter file not found: {path}")
    adapter = llama.llama_adapter_lora_init(model, str(path).encode())
    if not adapter:
        raise ConfigError(
            f"{path}: llama.cpp rejected the LoRA adapter; export it against this very base "
            "GGUF with sparring.train.export_gguf_adapter"
        )
    return adapter


def set_loras(ctx: Any, adapters: Sequence[tuple[Any, float]]) -> None:
    """Make ``adapters`` (handle, scale) the ones the llama.cpp context ``ctx`` applies;
    an empty sequence removes all. A scale of 1.0 applies an adapter as it was trained.

    Must not run while the context is decoding. Raises ConfigError when llama.cpp refuses.
    """
    llama = _llama()
    count = len(adapters)
    handles = (llama.llama_adapter_lora_p_ctypes * count)(*(h for h, _ in adapters))
    scales = (ctypes.c_float * count)(*(float(s) for _, s in adapters))
    rc = llama.llama_set_adapters_lora(
        ctx, handles if count else None, count, scales if count else None
    )
    if rc != 0:
        raise ConfigError(f"llama.cpp could not apply {count} LoRA adapter(s) (code {rc})")


def attach_lora(model: LlamaCppModel, adapters: Sequence[tuple[Path, float]]) -> None:
    """Apply the adapter files ``adapters`` (path, scale) to ``model``, replacing any applied
    before. Call it while no ``generate`` call is in flight.

    Raises ConfigError when the model is closed or busy, or an adapter does not fit it;
    ModelNotFoundError for a missing adapter file.
    """
    scheduler = model._scheduler
    if scheduler is None:
        raise ConfigError(f"{model.id}: the model is closed; load it again to attach adapters")
    if scheduler._active or scheduler._waiting or not scheduler._inbox.empty():
        raise ConfigError(f"{model.id}: generation is in flight; attach adapters between calls")
    ctx = scheduler._ctx
    # The context knows its model; LlamaCppModel keeps no handle of it to borrow.
    handle = _llama().llama_get_model(ctx)
    loaded = [(load_lora(handle, Path(path)), scale) for path, scale in adapters]
    set_loras(ctx, loaded)
