"""Model slots: the id under which a slot's replies are cached must change with its weights,
and a slot trains round after round in one process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sparring.dart.slots import ModelSlot
from sparring.train import LoRAConfig, SFTExample
from sparring.types import Message


def _slot(tmp_path: Path, run: str, weights: bytes) -> ModelSlot:
    adapter = tmp_path / run / "target-r1" / "adapter.gguf"
    adapter.parent.mkdir(parents=True)
    adapter.write_bytes(weights)
    slot = ModelSlot("target", "builtin/qwen2.5-coder-0.5b", tmp_path / run)
    slot.restore(str(adapter.parent), str(adapter))
    return slot


def test_adapters_in_same_named_folders_get_ids_by_their_content(tmp_path: Path) -> None:
    base = ModelSlot("target", "builtin/qwen2.5-coder-0.5b", tmp_path)
    dart = _slot(tmp_path, "dart-run", b"weights of one run")
    mart = _slot(tmp_path, "mart-run", b"weights of another run")
    again = _slot(tmp_path, "resumed-run", b"weights of one run")
    assert base.model_id == "target:qwen2.5-coder-0.5b"
    assert dart.model_id.startswith("target:qwen2.5-coder-0.5b+target-r1@")
    assert dart.model_id != mart.model_id
    assert dart.model_id == again.model_id


def _lora_b(adapter_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    return {k: v for k, v in tensors.items() if "lora_B" in k}


def test_a_slot_trains_round_after_round_in_one_process(tmp_path: Path) -> None:
    """Round 2 continues round 1's adapter on the same in-memory base model (a second
    round once failed there: the base still carried round 1's LoRA layers)."""
    pytest.importorskip("peft")
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    examples = [
        SFTExample(messages=(Message(role="user", content=q),), response=a)
        for q, a in [("Say hi.", "Hi there!"), ("Name a colour.", "Blue.")]
    ]
    tiny = {"rank": 4, "alpha": 8.0, "max_steps": 1, "batch_size": 2, "max_len": 64}
    slot = ModelSlot("red", "builtin/smollm2-135m", tmp_path)
    slot.train(examples, LoRAConfig(**tiny, learning_rate=1e-2), "r1", seed=0)
    first = (slot.adapter_dir, slot.model_id)
    assert first[0] is not None
    base = slot._hf.model
    before = {n: p.detach().clone() for n, p in base.named_parameters() if "lora" not in n}
    assert not any(isinstance(m, BaseTunerLayer) for m in base.modules())

    # A learning rate of ~0 leaves round 2's adapter where round 1 left it.
    slot.train(examples, LoRAConfig(**tiny, learning_rate=1e-9), "r2", seed=1)
    assert slot.adapter_dir is not None and slot.adapter_dir != first[0]
    assert slot.model_id != first[1]
    b1, b2 = _lora_b(first[0]), _lora_b(slot.adapter_dir)
    assert b1.keys() == b2.keys() and b1
    assert all(b1[k].abs().max() > 0 for k in b1)
    assert all(torch.allclose(b1[k], b2[k], atol=1e-6) for k in b1)
    after = dict(base.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_a_scaled_slot_generates_with_a_scaled_adapter_and_trains_on_the_unscaled_one(
    tmp_path: Path,
) -> None:
    """``scale`` (DART's ``target_scale``) reaches the GGUF the slot generates with; the peft
    adapter a next round continues keeps the trained alpha."""
    pytest.importorskip("peft")
    import json

    import gguf

    example = SFTExample(messages=(Message(role="user", content="Say hi."),), response="Hi!")
    slot = ModelSlot("target", "builtin/smollm2-135m", tmp_path, scale=0.25)
    tiny = LoRAConfig(rank=4, alpha=8.0, max_steps=1, batch_size=1, max_len=64)
    slot.train([example], tiny, "r1", seed=0)
    assert slot.adapter_dir is not None and slot.adapter_gguf is not None
    alpha = gguf.GGUFReader(slot.adapter_gguf).fields["adapter.lora.alpha"].contents()
    assert alpha == pytest.approx(0.25 * 8.0)
    peft_config = json.loads((slot.adapter_dir / "adapter_config.json").read_text())
    assert peft_config["lora_alpha"] == 8.0


def test_a_blended_adapter_trains_further_at_the_rank_of_both(tmp_path: Path) -> None:
    """A round after a blend (DART's ``repair_blend``) continues the blend, whose rank is
    the sum of the two it was made from, at the same alpha/rank scale."""
    pytest.importorskip("peft")
    import json

    example = SFTExample(messages=(Message(role="user", content="Say hi."),), response="Hi!")
    tiny = LoRAConfig(rank=4, alpha=8.0, max_steps=1, batch_size=1, max_len=64)
    slot = ModelSlot("target", "builtin/smollm2-135m", tmp_path)
    slot.train([example], tiny, "r1", seed=0)
    trained = slot.adapter_dir
    slot.restore(None, None)
    slot.train([example], tiny, "r1-repair", seed=1)
    assert trained is not None and slot.adapter_dir is not None
    slot.blend(trained, slot.adapter_dir, 0.5, "r1-blend0.5")
    assert slot.adapter_dir == tmp_path / "target-r1-blend0.5"
    slot.train([example], tiny, "r2", seed=2)
    assert slot.adapter_dir == tmp_path / "target-r2" and slot.adapter_gguf is not None
    peft_config = json.loads((slot.adapter_dir / "adapter_config.json").read_text())
    assert (peft_config["r"], peft_config["lora_alpha"]) == (8, 16.0)
    assert slot.adapter_gguf.is_file()
