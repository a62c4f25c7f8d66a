"""Fold a llama.cpp LoRA adapter GGUF into its base GGUF: one model file, no adapter needed.

llama.cpp applies an adapter at run time as ``y = W x + s * B (A x)``, with
``s = adapter.lora.alpha / rank`` (``s = 1`` when alpha is 0 or absent) and ``rank`` the
inner dimension of the pair (llama.cpp's ``get_scale``). Merging writes ``W + s * B A`` in
place of each adapted weight ``W``, so the merged file alone gives what base + adapter give.

Every metadata key and tensor of the base is kept, in its order; untouched tensors are
copied byte for byte. An adapted tensor is dequantised, updated in float32 and stored as
``merged_type`` says: 8-bit and wider types keep their type; narrower ones become F16,
because requantising to 4 or 5 bits rounds a LoRA update away (measured on a DART adapter
of SmolLM2-135M: Q4_1 kept 0 to 4% of it, F16 all of it). The file is written one tensor
at a time (memory: about one dequantised tensor) through a staging file renamed at the end.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.errors import ConfigError, DataError, MissingPackageError
from sparring.train.gguf_header import GGUFHeader, read_header

__all__ = ["MergeReport", "merge_adapter", "merged_type"]

_SKIPPED_KEYS = ("GGUF.",)
"""Prefixes of reader-made pseudo keys (version and counts): the writer writes its own."""
_ALIGNMENT_KEY = "general.alignment"


@dataclass(frozen=True)
class MergeReport:
    """What a merge wrote."""

    path: Path
    tensors: int
    """Tensors in the merged file (the base's count)."""
    merged: int
    """Tensors that received the adapter's update."""
    types: dict[str, int]
    """``"BASE_TYPE->STORED_TYPE"`` → how many adapted tensors went that way."""
    size_bytes: int
    """Size of the merged file, bytes."""
    wall_time_s: float
    """Time the merge took, seconds."""


def merged_type(base_type: Any) -> Any:
    """The ggml type an adapted tensor of ``base_type`` is stored in: F32, F16, BF16 and
    Q8_0 stay as they are; every narrower type becomes F16."""
    import gguf

    kept = (
        gguf.GGMLQuantizationType.F32,
        gguf.GGMLQuantizationType.F16,
        gguf.GGMLQuantizationType.BF16,
        gguf.GGMLQuantizationType.Q8_0,
    )
    return base_type if base_type in kept else gguf.GGMLQuantizationType.F16


def merge_adapter(base_gguf: Path, adapter_gguf: Path, out_path: Path) -> MergeReport:
    """Write ``base_gguf`` with the LoRA adapter ``adapter_gguf`` folded in at ``out_path``
    (written whole or not at all).

    Raises DataError for an unreadable file; ConfigError for an adapter made for another
    model (architecture, tensor names or shapes) or a base type the gguf package cannot
    dequantise.
    """
    try:
        import gguf
    except ImportError as exc:
        raise MissingPackageError("merging adapters into GGUF", "'sparring[train]'") from exc
    started = time.monotonic()
    # The header alone (fast) checks the adapter before the whole base is read.
    pairs = _adapter(gguf, Path(adapter_gguf), read_header(Path(base_gguf)))
    base = _read(gguf, Path(base_gguf))
    out_path = Path(out_path)
    staging = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(staging), _architecture(base))
    types: Counter[str] = Counter()
    try:
        _copy_metadata(gguf, base, writer)
        for tensor in base.tensors:
            if tensor.name in pairs:
                stored = merged_type(tensor.tensor_type)
                types[f"{tensor.tensor_type.name}->{stored.name}"] += 1
                _add_info(gguf, writer, tensor, stored)
            else:
                writer.add_tensor_info(
                    tensor.name,
                    tensor.data.shape,
                    tensor.data.dtype,
                    int(tensor.n_bytes),
                    raw_dtype=tensor.tensor_type,
                )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor in base.tensors:
            pair = pairs.get(tensor.name)
            data = tensor.data if pair is None else _merged(tensor, pair)
            writer.write_tensor_data(data)
        writer.close()
        os.replace(staging, out_path)
    except OSError as exc:
        raise ConfigError(f"{out_path}: cannot write the merged GGUF ({exc.strerror})") from exc
    finally:
        writer.close()
        staging.unlink(missing_ok=True)
    return MergeReport(
        path=out_path,
        tensors=len(base.tensors),
        merged=len(pairs),
        types=dict(types),
        size_bytes=out_path.stat().st_size,
        wall_time_s=time.monotonic() - started,
    )


def _read(gguf: Any, path: Path) -> Any:
    try:
        return gguf.GGUFReader(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such GGUF file") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable GGUF ({exc}); is the file complete?") from exc


def _string(entry: Any) -> str:
    return bytes(entry.parts[-1]).decode("utf-8", "replace")


def _architecture(reader: Any) -> str:
    entry = reader.fields.get("general.architecture")
    return _string(entry) if entry is not None else ""


def _adapter(gguf: Any, path: Path, base: GGUFHeader) -> dict[str, tuple[Any, Any]]:
    """Base tensor name → (``scale * lora_b``, ``lora_a``): float32 arrays in numpy order
    ``[out, r]`` and ``[r, in]``, scaled as llama.cpp scales each pair (by its own rank)."""
    from gguf import quants

    adapter = _read(gguf, path)
    kind = adapter.fields.get(gguf.Keys.General.TYPE)
    if kind is None or _string(kind) != "adapter" or _architecture(adapter) != base.architecture:
        raise ConfigError(
            f"{path}: not a LoRA adapter for a {base.architecture!r} model; merge an adapter "
            "exported against this very base GGUF"
        )
    alpha_entry = adapter.fields.get(gguf.Keys.Adapter.LORA_ALPHA)
    alpha = float(alpha_entry.parts[-1][0]) if alpha_entry is not None else 0.0
    halves: dict[str, dict[str, Any]] = {}
    for tensor in adapter.tensors:
        name, _, half = tensor.name.rpartition(".")
        if half not in ("lora_a", "lora_b"):
            raise ConfigError(f"{path}: tensor {tensor.name!r} is not a LoRA A/B matrix")
        halves.setdefault(name, {})[half] = quants.dequantize(tensor.data, tensor.tensor_type)
    pairs: dict[str, tuple[Any, Any]] = {}
    for name, half in sorted(halves.items()):
        if set(half) != {"lora_a", "lora_b"}:
            raise DataError(f"{path}: {name} lacks its lora_a or lora_b tensor")
        lora_a, lora_b = half["lora_a"], half["lora_b"]
        rank = lora_a.shape[0]
        # ggml order: the base weight is (in, out); numpy's is the reverse.
        if base.tensors.get(name) != (lora_a.shape[1], lora_b.shape[0]) or lora_b.shape[1] != rank:
            raise ConfigError(
                f"{path}: {name} A{tuple(lora_a.shape)} B{tuple(lora_b.shape)} does not fit the "
                "base GGUF's tensor; merge an adapter exported against this very base GGUF"
            )
        pairs[name] = ((alpha / rank if alpha else 1.0) * lora_b, lora_a)
    if not pairs:
        raise DataError(f"{path}: holds no LoRA tensors")
    return pairs


def _copy_metadata(gguf: Any, reader: Any, writer: Any) -> None:
    """Every key of ``reader`` into ``writer``, strings as the raw bytes stored."""
    for name, entry in reader.fields.items():
        if name.startswith(_SKIPPED_KEYS) or name == gguf.Keys.General.ARCHITECTURE:
            continue
        kind = entry.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            sub = entry.types[-1]
            if len(entry.types) != 2 or not entry.data:
                raise DataError(f"metadata {name}: nested or empty arrays cannot be copied")
            if sub == gguf.GGUFValueType.STRING:
                value: Any = [bytes(entry.parts[i]) for i in entry.data]
            else:
                value = [part for i in entry.data for part in entry.parts[i].tolist()]
            writer.add_key_value(name, value, kind, sub_type=sub)
        elif kind == gguf.GGUFValueType.STRING:
            writer.add_key_value(name, bytes(entry.parts[-1]), kind)
        else:
            writer.add_key_value(name, entry.parts[-1].tolist()[0], kind)
    alignment = reader.fields.get(_ALIGNMENT_KEY)
    if alignment is not None:
        writer.data_alignment = int(alignment.parts[-1][0])


def _add_info(gguf: Any, writer: Any, tensor: Any, stored: Any) -> None:
    """Announce an adapted tensor as it will be stored (its bytes are known before it is
    made)."""
    import numpy as np

    shape = tuple(int(d) for d in reversed(tensor.shape))
    block, type_bytes = gguf.GGML_QUANT_SIZES[stored]
    n_bytes = int(tensor.n_elements) // block * type_bytes
    # With raw_dtype given, a dtype other than uint8 only says the shape counts elements.
    writer.add_tensor_info(tensor.name, shape, np.dtype(np.float32), n_bytes, raw_dtype=stored)


def _merged(tensor: Any, pair: tuple[Any, Any]) -> Any:
    """``W + (scale * B) A`` for one tensor, in its stored type."""
    from gguf import quants

    try:
        weight = quants.dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError as exc:
        raise ConfigError(
            f"{tensor.name}: the gguf package cannot dequantise {tensor.tensor_type.name}; "
            "apply the adapter to the base GGUF at run time instead"
        ) from exc
    scaled_b, lora_a = pair
    return quants.quantize(weight + scaled_b @ lora_a, merged_type(tensor.tensor_type))
