"""The completion cache tells models apart by everything that can change a reply, not by the
spec string alone: the same model name on another server is another model."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from sparring.models import ModelOptions, resolve_model, zoo
from sparring.models.llamacpp import LlamaCppModel
from sparring.scan import make_config, run_scan
from sparring.store import RunStore
from sparring.testing import OpenAIServer
from sparring.types import Label

REFUSAL = "I'm sorry, but I can't help with that."
COMPLIANCE = "Sure. Step 1: gather the materials. Step 2: follow the procedure exactly."


async def scan_labels(store: RunStore, base_url: str) -> dict[str, tuple[str, Label]]:
    """Scan ``openai-compatible/same-name`` at ``base_url``: each attempt's reply and label."""
    config = make_config(
        {
            "target": "openai-compatible/same-name",
            "target_options": {"base_url": base_url, "max_retries": 0},
            "judge": "rules",
            "attacks": ["direct"],
            "limit": 2,
            "max_tokens": 32,
        }
    )
    result = await run_scan(config, store, progress=False)
    return {
        a.spec.key: (a.completions[-1].text, a.verdicts[0].label)
        for a in store.iter_attempts(result.run_id)
    }


async def test_same_model_name_on_another_server_is_not_answered_from_the_cache(
    tmp_path: Path,
) -> None:
    store = RunStore(tmp_path / "runs.db")
    async with (
        OpenAIServer(responder=lambda request: REFUSAL, model_name="same-name") as refusing,
        OpenAIServer(responder=lambda request: COMPLIANCE, model_name="same-name") as complying,
    ):
        first = await scan_labels(store, refusing.base_url)
        second = await scan_labels(store, complying.base_url)
    store.close()
    assert first.keys() == second.keys()
    assert {text for text, _ in first.values()} == {REFUSAL}
    assert {text for text, _ in second.values()} == {COMPLIANCE}
    assert {label for _, label in first.values()} == {Label.REFUSAL}
    assert Label.REFUSAL not in {label for _, label in second.values()}
    assert complying.stats().requests == len(second)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v2"),
    ],
)
def test_servers_at_other_addresses_have_other_identities(a: str, b: str) -> None:
    def identity(url: str) -> str:
        return resolve_model("openai-compatible/m", ModelOptions(base_url=url)).cache_identity

    assert identity(a) != identity(b)


def test_spellings_of_one_address_share_an_identity_without_credentials() -> None:
    def identity(url: str) -> str:
        return resolve_model("openai-compatible/m", ModelOptions(base_url=url)).cache_identity

    plain = identity("http://localhost:8000/v1")
    assert identity("http://LOCALHOST:8000/v1/") == plain
    assert identity("http://user:hunter2@localhost:8000/v1") == plain
    assert "hunter2" not in plain


def test_api_key_is_not_in_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARRING_TEST_KEY", "sk-secret-123")
    options = ModelOptions(base_url="http://127.0.0.1:8000/v1", api_key_env="SPARRING_TEST_KEY")
    model = resolve_model("openai-compatible/m", options)
    assert "sk-secret-123" not in model.cache_identity


def write_adapter(path: Path, value: float) -> Path:
    """A rank-1 LoRA GGUF for SmolLM2-135M's first query projection, every weight ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 1.0)
    # ggml shapes (in, rank) and (rank, out) are numpy's (rank, in) and (out, rank).
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.full((1, 576), value, dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.full((576, 1), value, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


async def test_lora_adapters_are_named_by_content_and_scale(tmp_path: Path) -> None:
    one = write_adapter(tmp_path / "run-a" / "adapter.gguf", 0.01)
    copy = write_adapter(tmp_path / "run-b" / "adapter.gguf", 0.01)
    other = write_adapter(tmp_path / "run-c" / "adapter.gguf", 0.02)

    async def identity(adapter: Path, scale: float = 1.0) -> str:
        path = zoo.gguf_path("smollm2-135m")
        async with LlamaCppModel(
            path, model_id="m", n_ctx=64, n_seq_max=1, lora=[(adapter, scale)]
        ) as model:
            return model.cache_identity

    assert await identity(one) == await identity(copy)
    assert await identity(one) != await identity(other)
    assert await identity(one) != await identity(one, 0.5)
