"""Blend two peft LoRA adapters of one base model into one adapter, exactly.

An adapter's update to a weight is ``s * B @ A`` (``s`` = alpha / r, or alpha / sqrt(r)
with rsLoRA). The blend at weight ``w`` applies ``w`` times the first adapter's update plus
``1 - w`` times the second's. Stacking the two adapters' ranks writes that sum as a single
LoRA of rank ``r1 + r2``: ``A = [sqrt(w) A1; sqrt(1-w) A2]`` (rows) and
``B = [sqrt(w) B1, sqrt(1-w) B2]`` (columns), with alpha set so the scale ``s`` is
unchanged. The result is an ordinary adapter: it trains further, exports to GGUF and merges
like one written by ``train_lora``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sparring.errors import ConfigError, DataError, MissingPackageError
from sparring.train.checkpoint import write_whole
from sparring.train.gguf_export import read_lora_config

__all__ = ["blend_adapters"]

_CONFIG = "adapter_config.json"
_WEIGHTS = "adapter_model.safetensors"
_SOURCE_FILE = "blend.json"
"""Names the two adapters and the weight a blended adapter folder was made from."""


def blend_adapters(first: Path, second: Path, weight: float, out_dir: Path) -> Path:
    """Write to ``out_dir`` (whole or not at all) the adapter whose update is ``weight``
    times ``first``'s plus ``1 - weight`` times ``second``'s; returns ``out_dir``.

    Both adapters must adapt the same modules of the same base with the same scale
    (alpha over rank, as ``train_lora`` writes them at one ``LoRAConfig``).

    Raises ConfigError for a weight outside (0, 1), adapters that do not match or one
    llama.cpp cannot apply (``read_lora_config``), ModelNotFoundError when a folder holds no
    adapter, DataError when one is unreadable.
    """
    try:
        import numpy as np
        from safetensors.numpy import load_file, save_file
    except ImportError as exc:
        raise MissingPackageError("blending LoRA adapters", "'sparring[train]'") from exc
    if not 0.0 < weight < 1.0:
        raise ConfigError(f"blend_adapters: weight must lie strictly between 0 and 1, got {weight}")
    first, second, out_dir = Path(first), Path(second), Path(out_dir)
    config_a, config_b = read_lora_config(first), read_lora_config(second)
    scale = _scale(config_a, first)
    if not math.isclose(scale, _scale(config_b, second), rel_tol=1e-6):
        raise ConfigError(f"{first} and {second}: adapters scale their updates differently")
    for key in ("target_modules", "use_rslora", "base_model_name_or_path"):
        if config_a.get(key) != config_b.get(key):
            raise ConfigError(f"{first} and {second}: adapters differ in {key}")
    weights_a, weights_b = _weights(first, load_file), _weights(second, load_file)
    if set(weights_a) != set(weights_b):
        raise ConfigError(f"{first} and {second}: adapters train different layers")
    keep, take = math.sqrt(weight), math.sqrt(1.0 - weight)
    # lora_A is [r, in]: ranks stack as rows; lora_B is [out, r]: as columns.
    blended = {
        key: np.concatenate(
            [keep * weights_a[key], take * weights_b[key]], axis=0 if ".lora_A" in key else 1
        ).astype(weights_a[key].dtype)
        for key in weights_a
    }
    rank = int(config_a["r"]) + int(config_b["r"])
    divisor = math.sqrt(rank) if config_a.get("use_rslora") else rank
    config = config_a | {"r": rank, "lora_alpha": scale * divisor}
    source = {"first": str(first), "second": str(second), "weight": weight}

    def fill(staging: Path) -> None:
        save_file(blended, str(staging / _WEIGHTS))
        (staging / _CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
        (staging / _SOURCE_FILE).write_text(json.dumps(source, indent=2), encoding="utf-8")

    write_whole(out_dir, fill, "the blended adapter")
    return out_dir


def _scale(config: dict[str, Any], adapter_dir: Path) -> float:
    """The factor the adapter's ``B @ A`` is multiplied by."""
    try:
        rank, alpha = int(config["r"]), float(config["lora_alpha"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{adapter_dir / _CONFIG}: no valid r and lora_alpha") from exc
    return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)


def _weights(adapter_dir: Path, load_file: Any) -> dict[str, Any]:
    try:
        weights: dict[str, Any] = load_file(str(adapter_dir / _WEIGHTS))
    except (OSError, ValueError) as exc:
        raise DataError(f"{adapter_dir / _WEIGHTS}: unreadable adapter weights ({exc})") from exc
    odd = [key for key in weights if ".lora_A" not in key and ".lora_B" not in key]
    if odd:
        raise ConfigError(f"{adapter_dir / _WEIGHTS}: {odd[0]!r} is not a LoRA A/B matrix")
    return weights
