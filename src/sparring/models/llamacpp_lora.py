"""LoRA adapters in llama.cpp: load an adapter GGUF against a model, apply it to a context.

llama.cpp keeps the quantised base weights as they are and adds the LoRA product at run
time. An adapter belongs to the model it was loaded for and is freed with it. Adapter files
come from ``sparring.train.export_gguf_adapter`` (or any llama.cpp LoRA GGUF made for the
same base model). Used by ``LlamaCppModel(lora=...)``; both functions work on raw handles
and expect llama_cpp to be importable (the backend checked that already).
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sparring.errors import ConfigError, ModelNotFoundError

__all__ = ["adapter_digest", "load_lora", "set_loras"]


def adapter_digest(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of the file at ``path``: names an adapter by
    its weights, wherever it lies (adapters are megabytes, so this takes milliseconds)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:16]


def load_lora(model: Any, path: Path) -> Any:
    """Load the adapter GGUF at ``path`` for the loaded llama.cpp ``model`` handle.

    Raises ModelNotFoundError for a missing file, ConfigError when llama.cpp rejects it
    (another architecture, tensors the model lacks, wrong shapes).
    """
    import llama_cpp

    if not path.is_file():
        raise ModelNotFoundError(f"LoRA adapter file not found: {path}")
    adapter = llama_cpp.llama_adapter_lora_init(model, str(path).encode())
    if not adapter:
        raise ConfigError(
            f"{path}: llama.cpp rejected the LoRA adapter; export it against this very base "
            "GGUF with sparring.train.export_gguf_adapter"
        )
    return adapter


def set_loras(ctx: Any, adapters: Sequence[tuple[Any, float]]) -> None:
    """Make ``adapters`` (handle, scale) the ones the llama.cpp context ``ctx`` applies.

    Nothing is done for an empty sequence (a fresh context applies none). Must not run
    while the context is decoding. Raises ConfigError when llama.cpp refuses.
    """
    if not adapters:
        return
    import llama_cpp

    count = len(adapters)
    handles = (llama_cpp.llama_adapter_lora_p_ctypes * count)(*(h for h, _ in adapters))
    scales = (ctypes.c_float * count)(*(float(s) for _, s in adapters))
    if llama_cpp.llama_set_adapters_lora(ctx, handles, count, scales) != 0:
        raise ConfigError(f"llama.cpp could not apply {count} LoRA adapter(s)")
