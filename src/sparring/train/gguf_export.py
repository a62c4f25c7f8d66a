"""Export a peft LoRA adapter as a llama.cpp LoRA adapter GGUF.

llama.cpp applies such an adapter at run time on top of the (possibly quantised) base GGUF:
``y = W x + s * B (A x)`` with ``s = user_scale * adapter.lora.alpha / rank``. What it
expects of the file (llama.cpp ``llama_adapter_lora_init``):

- ``general.type = "adapter"``, ``general.architecture`` equal to the base model's,
  ``adapter.type = "lora"``, ``adapter.lora.alpha`` (float32);
- for each adapted weight ``NAME`` of the base (e.g. ``blk.3.attn_v.weight``) a pair
  ``NAME.lora_a`` with ggml shape ``(in, r)`` and ``NAME.lora_b`` with shape ``(r, out)``.
  ggml lists dimensions innermost first, so these are peft's ``lora_A`` ``[r, in]`` and
  ``lora_B`` ``[out, r]`` arrays exactly as stored, untransposed.

Hugging Face module names map to GGUF tensor names through ``gguf.TensorNameMap``. For the
llama architecture, GGUF stores the q_proj and k_proj rows permuted (for llama.cpp's rotary
layout) and transformers un-permutes them when it loads a GGUF; a LoRA update on those
layers changes output rows, so ``lora_b`` gets the same row permutation as the base weight.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from sparring.errors import ConfigError, DataError, MissingPackageError, ModelNotFoundError
from sparring.train.gguf_header import GGUFHeader, read_header

__all__ = ["export_gguf_adapter", "permute_rotary_rows", "read_lora_config"]

_ADAPTER_WEIGHTS = "adapter_model.safetensors"
_ADAPTER_CONFIG = "adapter_config.json"
# peft key: optional wrapper prefix, module path, lora_A/lora_B, optional adapter name.
_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$"
)
_PERMUTED_ARCHS = frozenset({"llama"})
"""GGUF architectures whose attn_q/attn_k rows are stored permuted: those transformers'
GGUF loader un-permutes on load (its LlamaTensorProcessor)."""


def export_gguf_adapter(
    adapter_dir: Path, base_gguf: Path, out_path: Path, scale: float = 1.0
) -> Path:
    """Write the peft LoRA adapter in ``adapter_dir`` as a llama.cpp adapter for
    ``base_gguf`` at ``out_path`` (written whole or not at all); returns ``out_path``.

    ``scale`` multiplies the update the file applies (it is folded into
    ``adapter.lora.alpha``, so llama.cpp and ``merge_adapter`` both apply it): 0.5 puts the
    model halfway between the base weights and the trained ones.

    Raises ModelNotFoundError when ``adapter_dir`` holds no adapter; DataError for an
    unreadable adapter or base GGUF; ConfigError for a scale that is not above 0 or an
    adapter llama.cpp cannot apply (DoRA, extra trained modules, per-layer alpha, or layers
    the base GGUF lacks).
    """
    try:
        import gguf
        import numpy as np
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise MissingPackageError("exporting adapters to GGUF", "'sparring[train]'") from exc
    if not scale > 0:
        raise ConfigError(f"export_gguf_adapter: scale must be above 0, got {scale}")
    adapter_dir, base_gguf, out_path = Path(adapter_dir), Path(base_gguf), Path(out_path)
    config = read_lora_config(adapter_dir)
    header = read_header(base_gguf)
    pairs = _pairs(load_file(str(adapter_dir / _ADAPTER_WEIGHTS)), adapter_dir)
    names = _name_map(gguf, header, base_gguf)
    staging = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(staging), header.architecture)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        rank = next(iter(pairs.values()))[0].shape[0]
        # llama.cpp divides by the rank; rsLoRA divides by its square root instead.
        scale_rank = math.sqrt(rank) if config.get("use_rslora") else rank
        alpha = scale * float(config.get("lora_alpha", 8)) * rank / scale_rank
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for module in sorted(pairs):
            lora_a, lora_b = pairs[module]
            tensor = _tensor_name(names, module, header, base_gguf)
            _check_shapes(tensor, lora_a, lora_b, header, rank)
            lora_b = _gguf_rows(lora_b, tensor, header)
            writer.add_tensor(f"{tensor}.lora_a", np.ascontiguousarray(lora_a, dtype=np.float32))
            writer.add_tensor(f"{tensor}.lora_b", np.ascontiguousarray(lora_b, dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(staging, out_path)
    except OSError as exc:
        raise ConfigError(f"{out_path}: cannot write the adapter GGUF ({exc.strerror})") from exc
    finally:
        writer.close()
        staging.unlink(missing_ok=True)
    return out_path


def permute_rotary_rows(rows: Any, n_head: int) -> Any:
    """Reorder a q/k projection's output rows from Hugging Face's rotary layout to the one
    llama-architecture GGUF files use (per head, interleave the two halves of each head).

    ``rows`` has shape ``[n_head * head_dim, ...]``; pass the key/value head count for k_proj.
    """
    half = rows.shape[0] // n_head // 2
    return rows.reshape(n_head, 2, half, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def read_lora_config(adapter_dir: Path) -> dict[str, Any]:
    """The peft settings (``adapter_config.json``) of the adapter in ``adapter_dir``, a plain
    LoRA llama.cpp can apply.

    Raises ModelNotFoundError when the folder holds no adapter, DataError when its config is
    unreadable, ConfigError for an adapter llama.cpp cannot apply (DoRA, extra trained
    modules, per-layer rank or alpha, biases).
    """
    config_path = adapter_dir / _ADAPTER_CONFIG
    if not config_path.is_file() or not (adapter_dir / _ADAPTER_WEIGHTS).is_file():
        raise ModelNotFoundError(
            f"{adapter_dir}: no {_ADAPTER_CONFIG} and {_ADAPTER_WEIGHTS} there; "
            "point at a directory written by train_lora"
        )
    try:
        config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{config_path}: unreadable adapter config ({exc})") from exc
    unsupported = [
        key
        for key, ok in (
            ("peft_type", config.get("peft_type") == "LORA"),
            ("use_dora", not config.get("use_dora")),
            ("modules_to_save", not config.get("modules_to_save")),
            ("rank_pattern", not config.get("rank_pattern")),
            ("alpha_pattern", not config.get("alpha_pattern")),
            ("bias", config.get("bias", "none") == "none"),
            ("fan_in_fan_out", not config.get("fan_in_fan_out")),
        )
        if not ok
    ]
    if unsupported:
        raise ConfigError(
            f"{config_path}: llama.cpp cannot apply this adapter ({', '.join(unsupported)}); "
            "train a plain LoRA (train_lora does)"
        )
    return config


def _pairs(weights: dict[str, Any], adapter_dir: Path) -> dict[str, tuple[Any, Any]]:
    """Module path -> (lora_A, lora_B) arrays."""
    halves: dict[str, dict[str, Any]] = {}
    for key, value in weights.items():
        match = _KEY.match(key)
        if match is None:
            raise ConfigError(
                f"{adapter_dir / _ADAPTER_WEIGHTS}: tensor {key!r} is not a LoRA A/B matrix; "
                "llama.cpp adapters hold only those"
            )
        halves.setdefault(match["module"], {})[match["ab"]] = value
    pairs = {}
    for module, half in halves.items():
        if set(half) != {"A", "B"}:
            raise DataError(f"{adapter_dir / _ADAPTER_WEIGHTS}: {module} lacks lora_A or lora_B")
        pairs[module] = (half["A"], half["B"])
    if not pairs:
        raise DataError(f"{adapter_dir / _ADAPTER_WEIGHTS}: holds no LoRA weights")
    if len({a.shape[0] for a, _ in pairs.values()}) != 1:
        raise ConfigError(f"{adapter_dir}: layers have different LoRA ranks; use one rank")
    return pairs


def _name_map(gguf: Any, header: GGUFHeader, base_gguf: Path) -> Any:
    arch = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}.get(header.architecture)
    blocks = header.arch_int("block_count")
    if arch is None or blocks is None:
        raise DataError(
            f"{base_gguf}: architecture {header.architecture!r} or its block_count is unknown to "
            "the gguf package; upgrade gguf or use a supported model"
        )
    return gguf.TensorNameMap(arch, blocks)


def _tensor_name(names: Any, module: str, header: GGUFHeader, base_gguf: Path) -> str:
    base = names.get_name(module)
    tensor = f"{base}.weight" if base else ""
    if tensor not in header.tensors:
        raise ConfigError(
            f"{base_gguf}: has no tensor for the adapted layer {module}; export the adapter "
            "against the GGUF of the model it was trained on"
        )
    return tensor


def _check_shapes(tensor: str, lora_a: Any, lora_b: Any, header: GGUFHeader, rank: int) -> None:
    in_features, out_features = header.tensors[tensor][:2]
    if lora_a.shape != (rank, in_features) or lora_b.shape != (out_features, rank):
        raise ConfigError(
            f"adapter layer for {tensor} has shapes A{tuple(lora_a.shape)} B{tuple(lora_b.shape)}"
            f" but the base GGUF's is {in_features} in, {out_features} out; "
            "export against the GGUF of the model it was trained on"
        )


def _gguf_rows(lora_b: Any, tensor: str, header: GGUFHeader) -> Any:
    """lora_B with its rows in the order the base GGUF stores that weight's rows."""
    if header.architecture not in _PERMUTED_ARCHS:
        return lora_b
    heads = header.arch_int("attention.head_count")
    kv_heads = header.arch_int("attention.head_count_kv")
    if heads is None:
        raise DataError(f"{header.architecture}.attention.head_count missing from the base GGUF")
    if tensor.endswith(".attn_q.weight"):
        return permute_rotary_rows(lora_b, heads)
    if tensor.endswith(".attn_k.weight"):
        return permute_rotary_rows(lora_b, kv_heads or heads)
    return lora_b
