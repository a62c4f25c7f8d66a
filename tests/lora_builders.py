"""A LoRA adapter with known random weights, saved as peft saves one and exported for
llama.cpp exactly as DART exports its rounds' adapters (``export_gguf_adapter``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sparring.train import export_gguf_adapter
from sparring.train.gguf_header import read_header

RANK = 8
ALPHA = 16.0
MODULES = {"self_attn.q_proj": "attn_q", "self_attn.v_proj": "attn_v", "mlp.down_proj": "ffn_down"}
"""Adapted Hugging Face modules → their GGUF tensor names (q_proj: rows stored permuted)."""


def random_adapter(
    folder: Path, base_gguf: Path, *, std: float, layers: tuple[int, ...] = (0, 3), seed: int = 0
) -> Path:
    """Export an adapter of rank RANK on MODULES of ``layers`` whose A and B entries are
    normal with standard deviation ``std``; returns ``folder/adapter.gguf``."""
    from safetensors.numpy import save_file

    shapes = read_header(base_gguf).tensors
    rng = np.random.default_rng(seed)
    weights = {}
    for layer in layers:
        for module, tensor in MODULES.items():
            in_features, out_features = shapes[f"blk.{layer}.{tensor}.weight"][:2]
            key = f"base_model.model.model.layers.{layer}.{module}"
            weights[f"{key}.lora_A.weight"] = rng.normal(0, std, (RANK, in_features))
            weights[f"{key}.lora_B.weight"] = rng.normal(0, std, (out_features, RANK))
    peft_dir = folder / "peft"
    peft_dir.mkdir(parents=True)
    save_file(
        {k: v.astype(np.float32) for k, v in weights.items()},
        str(peft_dir / "adapter_model.safetensors"),
    )
    config = {"peft_type": "LORA", "r": RANK, "lora_alpha": ALPHA, "bias": "none"}
    (peft_dir / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return export_gguf_adapter(peft_dir, base_gguf, folder / "adapter.gguf")
