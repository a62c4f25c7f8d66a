"""Trained-prompts records beside a model's weights, and the scan's line about them: real
files in a temporary folder, the built-in suite's own prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparring import api
from sparring.errors import ConfigError
from sparring.models.options import ModelOptions
from sparring.models.provenance import TRAINED_PROMPTS_FILE, TrainedPrompts, trained_prompts
from sparring.scan.plan import seen_note


def test_a_record_beside_the_gguf_or_an_adapter_is_found(tmp_path: Path) -> None:
    TrainedPrompts.write(tmp_path / TRAINED_PROMPTS_FILE, ["  Pick a lock. ", "Bake bread."], ["x"])
    record = trained_prompts(f"llamacpp/{tmp_path / 'model.gguf'}", ModelOptions())
    assert record is not None and record.suites == ("x",)
    assert record.seen(["Pick a lock.", "Bake bread.", "Bake a cake."]) == 2
    adapter = ModelOptions.model_validate({"adapters": [{"path": str(tmp_path / "a.gguf")}]})
    assert trained_prompts("builtin/smollm2-135m", adapter) == record
    assert trained_prompts("builtin/smollm2-135m", ModelOptions()) is None
    assert trained_prompts(f"llamacpp/{tmp_path / 'sub' / 'm.gguf'}", ModelOptions()) is None


def test_an_unreadable_record_names_its_file(tmp_path: Path) -> None:
    (tmp_path / TRAINED_PROMPTS_FILE).write_text('{"suites": []}')
    with pytest.raises(ConfigError, match=f"{TRAINED_PROMPTS_FILE}: not a readable"):
        trained_prompts(f"llamacpp/{tmp_path / 'model.gguf'}", ModelOptions())


def test_a_scan_says_how_many_of_its_prompts_the_target_trained_on(tmp_path: Path) -> None:
    target = f"llamacpp/{tmp_path / 'model.gguf'}"
    config = api.scan_config({"target": target, "attacks": "direct", "limit": 3}, None, [])
    chosen = api.scan_behaviors(config)
    harmful = [b for b in chosen if not b.benign]
    benign = [b for b in chosen if b.benign]
    assert seen_note(config, harmful, benign) is None  # no record yet
    TrainedPrompts.write(tmp_path / TRAINED_PROMPTS_FILE, [b.text for b in benign[:2]], ["s"])
    said: list[str] = []
    assert api.scan_behaviors(config, said.append) == chosen
    assert said == [
        "note: the target was trained on 0 of the 3 harmful and 2 of the 3 benign prompts of "
        f"this scan ({tmp_path / TRAINED_PROMPTS_FILE}); its rates on them are not out of "
        "sample: for those, scan a suite it did not train on (it trained on: s)"
    ]
    TrainedPrompts.write(tmp_path / TRAINED_PROMPTS_FILE, ["Something else."], ["s"])
    assert seen_note(config, harmful, benign) is None
