"""Folding a LoRA adapter into its base GGUF, on the packaged SmolLM2-135M (Q4_1).

The adapter has known random weights on six tensors of two layers, strong enough to change
the model's answers. The merged file must keep the base's metadata and untouched tensors
byte for byte, hold ``W + alpha/r * B A`` in the adapted ones, and run in llama.cpp as the
base with the adapter applied at run time does.

llama.cpp's logits move by about 0.17 (mean absolute) under any change to the weights at
all, even an adapter of 1e-8 weights, because a quantised matrix product rounds its input
to 8 bits; so the merged model is held to the adapter's effect: its distance from base +
adapter must be a small share of the adapter's own effect on the base.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
gguf = pytest.importorskip("gguf")

from lora_builders import ALPHA, RANK, random_adapter  # noqa: E402
from sparring.errors import ConfigError  # noqa: E402
from sparring.models import Adapter, ModelOptions, resolve_model, zoo  # noqa: E402
from sparring.train.gguf_merge import MergeReport, merge_adapter, merged_type  # noqa: E402
from sparring.types import GenerationParams, Message  # noqa: E402

pytestmark = pytest.mark.slow

STD = 0.085
"""Spread of the adapter's weights: enough to change greedy answers, not to break them."""
TEXT = "The capital of France is Paris. Write a short poem about the sea and the wind."
PROMPTS = (
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Explain recursion in one sentence.",
)
Q = gguf.GGMLQuantizationType


@pytest.fixture(scope="module")
def base() -> Path:
    return zoo.gguf_path("smollm2-135m")


@pytest.fixture(scope="module")
def adapter(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_adapter(tmp_path_factory.mktemp("lora"), base, std=STD)


@pytest.fixture(scope="module")
def merged(base: Path, adapter: Path) -> MergeReport:
    return merge_adapter(base, adapter, adapter.parent / "merged.gguf")


@pytest.fixture(scope="module")
def files(base: Path, adapter: Path, merged: MergeReport) -> dict[str, Any]:
    """The three files read once (reading a GGUF's metadata takes seconds)."""
    return {
        "base": gguf.GGUFReader(base),
        "adapter": gguf.GGUFReader(adapter),
        "merged": gguf.GGUFReader(merged.path),
    }


def test_merge_keeps_every_metadata_key_and_untouched_tensor_of_the_base(
    files: dict[str, Any], merged: MergeReport
) -> None:
    before, after = files["base"], files["merged"]
    assert list(after.fields) == list(before.fields)
    for name, field in before.fields.items():
        assert after.fields[name].types == field.types, name
        assert after.fields[name].contents() == field.contents(), name
    adapted = {t.name.rpartition(".")[0] for t in files["adapter"].tensors}
    assert [t.name for t in after.tensors] == [t.name for t in before.tensors]
    for old, new in zip(before.tensors, after.tensors, strict=True):
        assert list(new.shape) == list(old.shape), old.name
        if old.name in adapted:
            assert new.tensor_type == Q.F16, old.name
        else:
            assert new.tensor_type == old.tensor_type, old.name
            assert np.array_equal(new.data, old.data), old.name
    assert merged.merged == len(adapted) == 6
    assert merged.types == {"Q4_1->F16": 6}
    assert merged.size_bytes == merged.path.stat().st_size


def test_each_adapted_weight_is_the_base_plus_the_scaled_lora_product(
    files: dict[str, Any],
) -> None:
    name = "blk.3.attn_q.weight"
    base, lora, merged = ({t.name: t for t in files[f].tensors} for f in files)
    old, new = base[name], merged[name]
    weight = gguf.quants.dequantize(old.data, old.tensor_type)
    update = (ALPHA / RANK) * (lora[f"{name}.lora_b"].data @ lora[f"{name}.lora_a"].data)
    stored = gguf.quants.dequantize(new.data, new.tensor_type)
    np.testing.assert_allclose(stored, weight + update, rtol=1e-3, atol=1e-4)
    assert np.abs(stored - weight).mean() > 10 * np.abs(stored - weight - update).mean()


def _logits(model: Path, lora: Path | None = None) -> Any:
    """Next-token logits at every position of TEXT, by llama.cpp (base + ``lora``)."""
    import llama_cpp

    llm = llama_cpp.Llama(
        str(model),
        lora_path=str(lora) if lora else None,
        n_ctx=128,
        n_threads=2,
        logits_all=True,
        verbose=False,
    )
    try:
        tokens = llm.tokenize(TEXT.encode())
        llm.eval(tokens)
        return np.array(llm.scores[: len(tokens)])
    finally:
        llm.close()


def test_merged_model_gives_the_logits_of_the_base_with_the_adapter(
    base: Path, adapter: Path, merged: MergeReport
) -> None:
    plain, applied, folded = _logits(base), _logits(base, adapter), _logits(merged.path)
    effect = np.abs(applied - plain).mean()
    gap = np.abs(folded - applied).mean()
    # Measured on an AMD EPYC: effect 1.43, gap 0.19 (ratio 0.13); top-1 tokens agree at
    # 17 of 18 positions (base: 14). Half the update merged gives a ratio of 0.67.
    assert gap < 0.35 * effect
    same_top = (folded.argmax(axis=1) == applied.argmax(axis=1)).mean()
    assert same_top > (plain.argmax(axis=1) == applied.argmax(axis=1)).mean()
    assert same_top >= 0.9


async def _greedy(spec: str, options: ModelOptions) -> list[str]:
    params = GenerationParams(max_tokens=12, temperature=0.0)
    async with resolve_model(spec, options) as model:
        replies = await model.generate([[Message(role="user", content=p)] for p in PROMPTS], params)
    return [r.text for r in replies]


async def test_merged_model_spec_answers_as_the_base_with_the_adapter_option(
    adapter: Path, merged: MergeReport
) -> None:
    options = ModelOptions(n_ctx=256)
    folded = await _greedy(f"llamacpp/{merged.path}", options)
    with_adapter = options.model_copy(update={"adapters": (Adapter(path=str(adapter)),)})
    assert folded == await _greedy("builtin/smollm2-135m", with_adapter)
    assert folded != await _greedy("builtin/smollm2-135m", options)


def _adapter_file(path: Path, architecture: str, tensors: dict[str, Any]) -> Path:
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 1.0)
    for name, array in tensors.items():
        writer.add_tensor(name, array.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _pair(in_features: int, out_features: int) -> dict[str, Any]:
    name = "blk.0.attn_v.weight"
    return {
        f"{name}.lora_a": np.full((1, in_features), 0.01),
        f"{name}.lora_b": np.full((out_features, 1), 0.01),
    }


def test_an_adapter_for_another_architecture_is_refused(base: Path, tmp_path: Path) -> None:
    wrong = _adapter_file(tmp_path / "qwen.gguf", "qwen2", _pair(576, 192))
    with pytest.raises(ConfigError, match="not a LoRA adapter for a 'llama' model"):
        merge_adapter(base, wrong, tmp_path / "merged.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qwen.gguf"]


def test_an_adapter_whose_shapes_do_not_fit_the_base_is_refused(base: Path, tmp_path: Path) -> None:
    wrong = _adapter_file(tmp_path / "wide.gguf", "llama", _pair(896, 128))
    with pytest.raises(ConfigError, match=r"blk\.0\.attn_v\.weight .* does not fit"):
        merge_adapter(base, wrong, tmp_path / "merged.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.gguf"]


def test_narrow_types_become_f16_and_eight_bit_and_wider_ones_stay() -> None:
    assert [merged_type(t) for t in (Q.Q4_1, Q.Q5_0, Q.Q4_K, Q.Q6_K)] == [Q.F16] * 4
    assert [merged_type(t) for t in (Q.Q8_0, Q.F16, Q.BF16, Q.F32)] == [
        Q.Q8_0,
        Q.F16,
        Q.BF16,
        Q.F32,
    ]
