"""The transformers backend, run on the packaged SmolLM2-135M GGUF (dequantised by
transformers). One model load is shared by the module; tests that change weights work on a
copy.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("gguf")

import torch

from sparring.errors import ConfigError, ModelNotFoundError
from sparring.models import resolve_model
from sparring.models.hf import HFModel
from sparring.models.hf_loading import locate
from sparring.models.hf_sampling import pick_next_tokens, row_generator
from sparring.types import GenerationParams, Message

pytestmark = pytest.mark.slow

SMOL = "builtin/smollm2-135m"
GREEDY = GenerationParams(max_tokens=12)
SHORT = GenerationParams(max_tokens=3)
PROMPTS = [
    "What is the capital of France?",
    "Name three colours of the rainbow, separated by commas, and nothing else.",
    "Hi",
    "Write one sentence about the sea.",
]


def chat(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


@pytest.fixture(scope="module")
def smol() -> Iterator[HFModel]:
    # One intra-op thread: on a shared CI machine, OpenMP threads spinning against other
    # jobs make each decode step several times slower than one thread that never waits.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = resolve_model(f"hf/{SMOL}")
    assert isinstance(model, HFModel)
    yield model
    asyncio.run(model.aclose())
    torch.set_num_threads(threads)


def test_builtin_name_resolves_to_the_zoo_gguf_file() -> None:
    source = locate(SMOL)
    assert source.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (Path(source.location) / source.gguf_file).is_file()


def test_gguf_loads_as_float32_llama_on_cpu(smol: HFModel) -> None:
    assert smol.model.config.model_type == "llama"
    assert smol.device.type == "cpu"
    assert next(smol.model.parameters()).dtype == torch.float32


async def test_answers_capital_of_france_with_paris(smol: HFModel) -> None:
    [answer] = await smol.generate([chat(PROMPTS[0])], GREEDY)
    assert answer.ok
    assert "Paris" in answer.text


async def test_batched_greedy_equals_one_at_a_time(smol: HFModel) -> None:
    prompts = PROMPTS[1:]
    batched = await smol.generate([chat(p) for p in prompts], GREEDY)
    single = [(await smol.generate([chat(p)], GREEDY))[0] for p in prompts]
    assert [c.text for c in batched] == [c.text for c in single]
    assert len({c.prompt_tokens for c in batched}) > 1, "prompts must differ in length"


async def test_max_tokens_ends_with_length(smol: HFModel) -> None:
    params = GenerationParams(max_tokens=5)
    [answer] = await smol.generate([chat("Tell me a long story about a dragon.")], params)
    assert answer.finish_reason == "length"
    assert answer.completion_tokens == 5


async def test_prompt_tokens_count_the_rendered_chat(smol: HFModel) -> None:
    messages = [{"role": "user", "content": PROMPTS[1]}]
    rendered = smol.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    expected = len(smol.tokenizer(rendered, add_special_tokens=False)["input_ids"])
    [answer] = await smol.generate([chat(PROMPTS[1])], GenerationParams(max_tokens=2))
    assert answer.prompt_tokens == expected


async def test_stop_string_truncates_before_it(smol: HFModel) -> None:
    params = GenerationParams(max_tokens=10)
    [full] = await smol.generate([chat(PROMPTS[3])], params)
    words = full.text.split()
    assert len(words) >= 3, full.text
    stop = f" {words[2]}"
    stopped_params = params.model_copy(update={"stop": ("never-produced-zzz", stop)})
    [stopped] = await smol.generate([chat(PROMPTS[3])], stopped_params)
    assert stopped.finish_reason == "stop"
    assert stopped.text == full.text[: full.text.index(stop)]
    assert stopped.completion_tokens < full.completion_tokens


async def test_seeded_sampling_is_reproducible(smol: HFModel) -> None:
    params = GenerationParams(max_tokens=8, temperature=1.0, seed=1234)
    first = await smol.generate([chat(PROMPTS[3])], params)
    second = await smol.generate([chat(PROMPTS[3])], params)
    assert first[0].text == second[0].text


async def test_sampling_differs_across_seeds(smol: HFModel) -> None:
    calls = [
        smol.generate([chat(PROMPTS[3])], GenerationParams(max_tokens=8, temperature=1.5, seed=s))
        for s in range(3)
    ]
    answers = await asyncio.gather(*calls)
    assert len({a[0].text for a in answers}) > 1


async def test_seeded_sample_does_not_depend_on_batch_mates(smol: HFModel) -> None:
    params = GenerationParams(max_tokens=8, temperature=1.0, seed=99)
    [alone] = await smol.generate([chat(PROMPTS[2])], params)
    together = await smol.generate([chat(PROMPTS[2]), chat(PROMPTS[1])], params)
    assert together[0].text == alone.text


async def test_prompt_longer_than_context_is_a_failure(smol: HFModel) -> None:
    small = HFModel(smol.model, smol.tokenizer, model_id="hf/small-context", max_context=16)
    answers = await small.generate([chat(PROMPTS[1]), chat("Hi")], GREEDY)
    await small.aclose()
    assert [a.finish_reason for a in answers] == ["error", "error"]
    assert all(a.error and "tokens" in a.error for a in answers)


async def test_answer_is_cut_at_the_context_limit(smol: HFModel) -> None:
    story = chat("Tell me a long story.")
    [probe] = await smol.generate([story], GenerationParams(max_tokens=1))
    limit = probe.prompt_tokens + 3
    small = HFModel(smol.model, smol.tokenizer, model_id="hf/small-context", max_context=limit)
    [answer] = await small.generate([story], GREEDY)
    await small.aclose()
    assert answer.finish_reason == "length"
    assert answer.prompt_tokens + answer.completion_tokens <= limit


async def test_concurrent_calls_share_a_batch(smol: HFModel) -> None:
    batch_sizes: list[int] = []

    def record(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        if kwargs["input_ids"].shape[1] > 1:  # the prefill of a new batch
            batch_sizes.append(kwargs["input_ids"].shape[0])

    hook = smol.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        # Holding the lock keeps the worker from decoding while all three calls queue up.
        with smol.lock:
            tasks = [asyncio.create_task(smol.generate([chat(p)], SHORT)) for p in PROMPTS[:3]]
            await asyncio.sleep(0)
        answers = await asyncio.gather(*tasks)
    finally:
        hook.remove()
    assert all(a[0].ok for a in answers)
    assert sum(batch_sizes) == 3
    assert len(batch_sizes) < 3


async def test_event_loop_keeps_running_during_generation(smol: HFModel) -> None:
    ticks = 0
    finished = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not finished.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    await smol.generate([chat(PROMPTS[1])], SHORT)
    finished.set()
    await ticker
    assert ticks > 1


async def test_generate_after_close_returns_failures(smol: HFModel) -> None:
    model = HFModel(smol.model, smol.tokenizer, model_id="hf/closed")
    await model.aclose()
    [answer] = await model.generate([chat("Hi")], SHORT)
    assert answer.finish_reason == "error"
    assert answer.error is not None and "closed" in answer.error


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
async def test_model_built_from_loaded_pair_follows_weight_changes(smol: HFModel) -> None:
    peft = pytest.importorskip("peft")
    [base_answer] = await smol.generate([chat(PROMPTS[0])], SHORT)
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    tuned = peft.get_peft_model(copy.deepcopy(smol.model), config)
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if "lora_B" in name:
                param.normal_(std=5.0, generator=torch.Generator().manual_seed(0))
    model = HFModel(tuned, smol.tokenizer, model_id="hf/smollm2-lora")
    [tuned_answer] = await model.generate([chat(PROMPTS[0])], SHORT)
    await model.aclose()
    assert tuned_answer.ok
    assert tuned_answer.text != base_answer.text


def test_nucleus_sampling_keeps_only_the_top_mass() -> None:
    # Token 2 holds 0.79 of the probability, so a nucleus of 0.75 contains it alone.
    logits = torch.tensor([[0.0, 1.0, 3.0, 0.5]]).repeat(50, 1)
    params = [GenerationParams(temperature=1.0, top_p=0.75, seed=s) for s in range(50)]
    picks = pick_next_tokens(logits, params, [row_generator(p) for p in params])
    assert set(picks) == {2}


def test_full_nucleus_samples_other_tokens_too() -> None:
    logits = torch.tensor([[0.0, 1.0, 3.0, 0.5]]).repeat(50, 1)
    params = [GenerationParams(temperature=1.0, seed=s) for s in range(50)]
    picks = pick_next_tokens(logits, params, [row_generator(p) for p in params])
    assert len(set(picks)) > 1


def test_missing_gguf_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent.gguf"
    with pytest.raises(ModelNotFoundError, match=r"absent\.gguf") as err:
        resolve_model(f"hf/{missing}")
    assert "\n" not in str(err.value)


def test_folder_without_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        resolve_model(f"hf/{tmp_path}")


def test_unknown_hub_name_offline_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="local files"):
        resolve_model("hf/sparring-test/no-such-model")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--device"):
        HFModel.from_spec(SMOL, model_id=f"hf/{SMOL}", device="cuda")


def test_tokenizer_without_chat_template_is_rejected(smol: HFModel) -> None:
    tokenizer = copy.copy(smol.tokenizer)
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="chat template"):
        HFModel(smol.model, tokenizer, model_id="hf/base-model")
