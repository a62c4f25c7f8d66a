"""Model slots: the id under which a slot's replies are cached must change with its weights."""

from __future__ import annotations

from pathlib import Path

from sparring.dart.slots import ModelSlot


def _slot(tmp_path: Path, run: str, weights: bytes) -> ModelSlot:
    adapter = tmp_path / run / "target-r1" / "adapter.gguf"
    adapter.parent.mkdir(parents=True)
    adapter.write_bytes(weights)
    slot = ModelSlot("target", "qwen2.5-coder-0.5b", tmp_path / run)
    slot.restore(str(adapter.parent), str(adapter))
    return slot


def test_adapters_in_same_named_folders_get_ids_by_their_content(tmp_path: Path) -> None:
    base = ModelSlot("target", "qwen2.5-coder-0.5b", tmp_path)
    dart = _slot(tmp_path, "dart-run", b"weights of one run")
    mart = _slot(tmp_path, "mart-run", b"weights of another run")
    again = _slot(tmp_path, "resumed-run", b"weights of one run")
    assert base.model_id == "target:qwen2.5-coder-0.5b"
    assert dart.model_id.startswith("target:qwen2.5-coder-0.5b+target-r1@")
    assert dart.model_id != mart.model_id
    assert dart.model_id == again.model_id
