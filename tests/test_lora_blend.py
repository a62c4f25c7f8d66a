"""Blending two LoRA adapters into one (``blend_adapters``): the blend's update is the
weighted sum of theirs, exactly, and llama.cpp runs it as it runs the two adapters applied
at those weights. Adapters with known random weights on the packaged SmolLM2-135M."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("gguf")

from lora_builders import ALPHA, RANK, random_adapter
from sparring.errors import ConfigError, ModelNotFoundError
from sparring.models import Adapter, ModelOptions, resolve_model, zoo
from sparring.train import blend_adapters, export_gguf_adapter
from sparring.types import GenerationParams, Message

STD = 0.085
"""Spread of the adapters' weights: enough to change greedy answers (as in test_gguf_merge)."""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two peft adapter folders of rank RANK with different random weights."""
    base = zoo.gguf_path("smollm2-135m")
    folders = [tmp_path_factory.mktemp(f"lora{seed}") for seed in (0, 1)]
    for seed, folder in enumerate(folders):
        random_adapter(folder, base, std=STD, seed=seed)
    return folders[0] / "peft", folders[1] / "peft"


def _updates(adapter_dir: Path) -> dict[str, Any]:
    """Module → the adapter's update ``alpha / r * B @ A``."""
    from safetensors.numpy import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    scale = config["lora_alpha"] / config["r"]
    return {
        key.removesuffix(".lora_A.weight"): scale
        * weights[key.replace("lora_A", "lora_B")].astype(np.float64)
        @ weights[key].astype(np.float64)
        for key in weights
        if "lora_A" in key
    }


def test_a_blend_applies_the_weighted_sum_of_both_updates(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = pair
    out = blend_adapters(first, second, 0.3, tmp_path / "blend")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 2 * RANK and config["lora_alpha"] / config["r"] == ALPHA / RANK
    assert json.loads((out / "blend.json").read_text())["weight"] == 0.3
    a, b, blended = _updates(first), _updates(second), _updates(out)
    assert blended.keys() == a.keys() and a
    for module, update in blended.items():
        expected = 0.3 * a[module] + 0.7 * b[module]
        assert np.abs(update - expected).max() < 1e-6 * np.abs(expected).max()


async def _greedy(adapters: tuple[Adapter, ...]) -> list[str]:
    prompts = ("What is the capital of France?", "Explain recursion in one sentence.")
    options = ModelOptions(n_ctx=256, adapters=adapters)
    params = GenerationParams(max_tokens=12, temperature=0.0)
    async with resolve_model("builtin/smollm2-135m", options) as model:
        replies = await model.generate([[Message(role="user", content=p)] for p in prompts], params)
    return [r.text for r in replies]


@pytest.mark.slow
async def test_llama_cpp_runs_the_blend_as_both_adapters_at_their_weights(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    pytest.importorskip("llama_cpp")
    first, second = pair
    base = zoo.gguf_path("smollm2-135m")
    out = blend_adapters(first, second, 0.5, tmp_path / "blend")
    blended = export_gguf_adapter(out, base, out / "adapter.gguf")
    both = (
        Adapter(path=str(first.parent / "adapter.gguf"), scale=0.5),
        Adapter(path=str(second.parent / "adapter.gguf"), scale=0.5),
    )
    answers = await _greedy((Adapter(path=str(blended)),))
    assert answers == await _greedy(both)
    assert answers != await _greedy(())


@pytest.mark.parametrize("weight", [0.0, 1.0, -0.2, 1.5])
def test_a_weight_outside_the_open_interval_is_refused(
    pair: tuple[Path, Path], tmp_path: Path, weight: float
) -> None:
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        blend_adapters(*pair, weight, tmp_path / "blend")
    assert not (tmp_path / "blend").exists()


def test_adapters_that_scale_or_adapt_differently_are_refused(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = pair
    other = tmp_path / "other"
    other.mkdir()
    (other / "adapter_model.safetensors").write_bytes(
        (second / "adapter_model.safetensors").read_bytes()
    )
    config = json.loads((second / "adapter_config.json").read_text())
    (other / "adapter_config.json").write_text(json.dumps(config | {"lora_alpha": 2 * ALPHA}))
    with pytest.raises(ConfigError, match="scale their updates differently"):
        blend_adapters(first, other, 0.5, tmp_path / "blend")
    (other / "adapter_config.json").write_text(json.dumps(config | {"use_rslora": True}))
    with pytest.raises(ConfigError, match="scale their updates differently"):
        blend_adapters(first, other, 0.5, tmp_path / "blend")
    fewer = random_adapter(tmp_path / "fewer", zoo.gguf_path("smollm2-135m"), std=STD, layers=(0,))
    with pytest.raises(ConfigError, match="train different layers"):
        blend_adapters(first, fewer.parent / "peft", 0.5, tmp_path / "blend")
    with pytest.raises(ModelNotFoundError, match=r"no adapter_config\.json"):
        blend_adapters(first, tmp_path / "missing", 0.5, tmp_path / "blend")
    assert not (tmp_path / "blend").exists()
