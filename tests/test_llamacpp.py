"""The in-process llama.cpp backend, run on the packaged SmolLM2-135M.

Replies are kept short (a few to a few dozen tokens): the behaviours under test (batching,
limits, stop strings, seeds) show in the first tokens, and the machine running CI is small.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparring.errors import ModelNotFoundError
from sparring.models import Adapter, ModelOptions, ModelRole, resolve_model, zoo
from sparring.models.llamacpp import ChatTemplate, LlamaCppModel, TemplateFailure
from sparring.models.llamacpp_scheduler import Request
from sparring.types import Completion, GenerationParams, Message

N_CTX = 256


def _user(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


TOPICS = ("cats", "rain", "bread", "trains", "music", "winter")


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaCppModel]:
    """One SmolLM2 instance for the module: loading is once per instance, by design."""
    instance = LlamaCppModel(
        zoo.gguf_path("smollm2-135m"), model_id="builtin/smollm2-135m", n_ctx=N_CTX, n_seq_max=8
    )
    yield instance
    asyncio.run(instance.aclose())


async def test_answers_a_simple_prompt(model: LlamaCppModel) -> None:
    conversation = [
        Message(role="system", content="You are a helpful assistant."),
        Message(role="user", content="What is the capital of France?"),
    ]
    [reply] = await model.generate([conversation], GenerationParams(max_tokens=24))
    assert reply.ok
    assert "Paris" in reply.text
    assert reply.finish_reason == "stop"
    assert reply.prompt_tokens > 10
    assert 0 < reply.completion_tokens <= 24
    assert reply.latency_s > 0


async def test_concurrent_calls_each_get_their_own_reply(model: LlamaCppModel) -> None:
    # Call k asks for k + 2 tokens of a long answer: each reply's length identifies its call.
    calls = [
        model.generate(
            [_user(f"Write a long essay about {topic}.")], GenerationParams(max_tokens=k + 2)
        )
        for k, topic in enumerate(TOPICS)
    ]
    replies = [r for [r] in await asyncio.gather(*calls)]
    assert [r.completion_tokens for r in replies] == [k + 2 for k in range(len(TOPICS))]
    assert all(r.finish_reason == "length" and r.text for r in replies)


async def test_greedy_output_is_the_same_alone_and_batched(model: LlamaCppModel) -> None:
    params = GenerationParams(max_tokens=10)
    conversations = [_user(f"Tell me about {topic}.") for topic in TOPICS[:4]]
    alone = [(await model.generate([c], params))[0].text for c in conversations[:2]]
    batched = await model.generate(conversations, params)
    assert [r.text for r in batched[:2]] == alone


async def test_max_tokens_ends_with_length(model: LlamaCppModel) -> None:
    [reply] = await model.generate(
        [_user("Write a long story about a dragon.")], GenerationParams(max_tokens=5)
    )
    assert reply.finish_reason == "length"
    assert reply.completion_tokens == 5


async def test_stop_string_ends_the_reply_and_is_stripped(model: LlamaCppModel) -> None:
    conversation = _user("Write a long story about a dragon.")
    [full] = await model.generate([conversation], GenerationParams(max_tokens=16))
    words = full.text.split()
    stop = " " + words[3]
    [cut] = await model.generate([conversation], GenerationParams(max_tokens=16, stop=(stop,)))
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.index(stop)]


async def test_seeded_sampling_is_reproducible(model: LlamaCppModel) -> None:
    conversation = _user("Invent a name for a new planet.")
    seeded = [GenerationParams(max_tokens=10, temperature=1.2, seed=s) for s in (7, 7, 8, 9)]
    calls = (model.generate([conversation], p) for p in seeded)
    replies = [reply.text for [reply] in await asyncio.gather(*calls)]
    assert replies[0] == replies[1]
    assert len(set(replies)) > 1


async def test_prompt_longer_than_context_returns_a_failure(model: LlamaCppModel) -> None:
    [reply] = await model.generate([_user("word " * 400)], GenerationParams(max_tokens=4))
    assert not reply.ok
    assert reply.finish_reason == "error"
    assert reply.error is not None
    assert re.fullmatch(rf"prompt of \d+ tokens exceeds context of {N_CTX}", reply.error)


async def test_context_overflow_ends_with_length(model: LlamaCppModel) -> None:
    # Fill the context up to a few tokens, so that the reply stops there, not at max_tokens.
    def ask(words: int) -> list[Message]:
        return _user("filler " * words + "\nNow write a long story about a dragon.")

    [short], [longer] = [
        await model.generate([ask(k)], GenerationParams(max_tokens=1)) for k in (10, 20)
    ]
    per_word = (longer.prompt_tokens - short.prompt_tokens) / 10
    words = 10 + int((N_CTX - 6 - short.prompt_tokens) / per_word)
    [reply] = await model.generate([ask(words)], GenerationParams(max_tokens=64))
    assert N_CTX - 10 < reply.prompt_tokens < N_CTX
    assert reply.finish_reason == "length"
    assert reply.prompt_tokens + reply.completion_tokens == N_CTX


async def test_system_message_replaces_the_default_one(model: LlamaCppModel) -> None:
    prompt = model.render([Message(role="system", content="Be terse."), *_user("Hi")])
    assert prompt.startswith("<|im_start|>system\nBe terse.<|im_end|>")
    assert "SmolLM" not in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_template_without_system_role_folds_it_into_the_first_turn() -> None:
    source = (
        "{% for m in messages %}{% if m.role == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "[{{ m.role }}] {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    template = ChatTemplate(source)
    conversation = [Message(role="system", content="Be terse."), *_user("Hi")]
    assert template.render(conversation) == "[user] Be terse.\n\nHi\n[assistant]"


def test_template_that_rejects_a_conversation_raises_template_failure() -> None:
    template = ChatTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(TemplateFailure, match="roles must alternate"):
        template.render(_user("Hi"))


TEACHER = Message(
    role="system",
    content="You are a patient teacher. Answer in plain words, one idea at a time, and end "
    "every answer with a short question that checks the student understood.",
)


def _small(n_seq_max: int, n_ctx: int = N_CTX) -> LlamaCppModel:
    path = zoo.gguf_path("smollm2-135m")
    return LlamaCppModel(path, model_id="builtin/smollm2-135m", n_ctx=n_ctx, n_seq_max=n_seq_max)


def _opening(text: str) -> list[str]:
    """The first words of a reply. Reused keys and values were computed in a batch of
    another shape, and llama.cpp's sums depend on that shape, so a greedy reply may drift
    from the one computed from scratch after a few words (measured: word 10 of 12)."""
    return text.split()[:4]


async def _from_scratch(conversations: list[list[Message]], params: GenerationParams) -> list[str]:
    """Each reply from a model of its own, so that no prefix is reused."""
    texts = []
    for conversation in conversations:
        fresh = _small(1)
        [reply] = await fresh.generate([conversation], params)
        assert fresh.prompt_token_totals == (reply.prompt_tokens, 0)
        texts.append(reply.text)
        await fresh.aclose()
    return texts


async def test_prompts_sharing_a_system_prompt_compute_it_once() -> None:
    questions = [[TEACHER, *_user(f"Tell me about {topic}.")] for topic in TOPICS[:4]]
    params = GenerationParams(max_tokens=12)
    expected = await _from_scratch(questions, params)
    shared = _small(4)
    # All four arrive together: the first computes the system prompt, the others wait a
    # step for it, copy its stream and compute only their own question.
    replies = await shared.generate(questions, params)
    computed, reused = shared.prompt_token_totals
    await shared.aclose()
    assert [_opening(r.text) for r in replies] == [_opening(t) for t in expected]
    total = sum(r.prompt_tokens for r in replies)
    prefix = min(r.prompt_tokens for r in replies) - 10
    assert reused >= 3 * prefix
    assert computed + reused == total


async def test_a_later_turn_reuses_the_earlier_turns_prompt() -> None:
    params = GenerationParams(max_tokens=12)
    first = [TEACHER, *_user("Tell me about rain.")]
    chat = _small(2)
    [reply] = await chat.generate([first], params)
    second = [
        *first,
        Message(role="assistant", content=reply.text),
        *_user("And about snow?"),
    ]
    before = chat.prompt_token_totals
    [follow_up] = await chat.generate([second], params)
    computed, reused = (a - b for a, b in zip(chat.prompt_token_totals, before, strict=True))
    await chat.aclose()
    assert reused == reply.prompt_tokens
    assert computed + reused == follow_up.prompt_tokens
    [expected] = await _from_scratch([second], params)
    assert _opening(follow_up.text) == _opening(expected)


async def test_native_logging_stays_off_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    quiet = LlamaCppModel(zoo.gguf_path("smollm2-135m"), model_id="quiet", n_ctx=64, n_seq_max=1)
    await quiet.generate([_user("Hi")], GenerationParams(max_tokens=2))
    await quiet.aclose()
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("extra_buffers", [False, True])
async def test_extra_buffer_types_are_asked_for_only_when_opted_in(
    extra_buffers: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Off by default: llama-cpp-python 0.3.36 segfaults in llama_decode on Intel AMX CPUs
    once weights sit in an extra buffer type (llama.cpp names its repacking one)."""
    caplog.set_level(logging.DEBUG, logger="sparring.models.llamacpp.native")
    path = zoo.gguf_path("smollm2-135m")
    loaded = LlamaCppModel(path, model_id="x", n_ctx=64, n_seq_max=1, extra_buffers=extra_buffers)
    [reply] = await loaded.generate([_user("Hi")], GenerationParams(max_tokens=2))
    await loaded.aclose()
    assert reply.ok
    assert ("CPU_REPACK" in caplog.text) is extra_buffers


async def test_cache_identity_names_the_file_context_and_buffers(model: LlamaCppModel) -> None:
    path = zoo.gguf_path("smollm2-135m").resolve()
    size = path.stat().st_size
    assert model.cache_identity.startswith(f"builtin/smollm2-135m gguf={path}:{size}:")
    assert model.cache_identity.endswith(f" n_ctx={N_CTX} extra_buffers=False")
    other_context = _small(1, n_ctx=N_CTX // 2)
    same_settings = _small(1)
    try:
        assert other_context.cache_identity != model.cache_identity
        assert same_settings.cache_identity == model.cache_identity
    finally:
        await other_context.aclose()
        await same_settings.aclose()


async def test_closed_model_returns_failures() -> None:
    closing = LlamaCppModel(zoo.gguf_path("smollm2-135m"), model_id="c", n_ctx=64, n_seq_max=1)
    await closing.aclose()
    [reply] = await closing.generate([_user("Hi")], GenerationParams(max_tokens=2))
    assert reply.error == "model is closed"


async def test_cancelled_request_is_dropped() -> None:
    single = LlamaCppModel(zoo.gguf_path("smollm2-135m"), model_id="s", n_ctx=128, n_seq_max=1)
    delivered: queue.SimpleQueue[Completion] = queue.SimpleQueue()
    cancel = threading.Event()
    request = Request(
        prompt=single.render(_user("Write a long story.")),
        params=GenerationParams(max_tokens=100),
        deliver=delivered.put,
        cancelled=cancel.is_set,
    )
    # The scheduler is driven directly: through generate() a dropped reply is invisible.
    assert single._scheduler is not None
    single._scheduler.submit(request)
    cancel.set()
    completion = await asyncio.to_thread(delivered.get, timeout=120)
    await single.aclose()
    assert completion.error == "cancelled"


def test_file_that_is_not_gguf_is_rejected(tmp_path: Path) -> None:
    junk = tmp_path / "model.gguf"
    junk.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelNotFoundError, match=r"cannot load .*model\.gguf"):
        LlamaCppModel(junk, model_id="llamacpp/junk")


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="GGUF file not found"):
        LlamaCppModel(tmp_path / "absent.gguf", model_id="llamacpp/absent")


def test_a_llamacpp_spec_naming_no_file_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="llamacpp model file not found"):
        resolve_model(f"llamacpp/{tmp_path / 'absent.gguf'}")


def _rank_one_adapter(path: Path) -> Path:
    """A rank-1 LoRA GGUF for SmolLM2-135M's first query projection."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 1.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.full((1, 576), 0.01, dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.full((576, 1), 0.01, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


async def test_adapters_in_the_model_options_are_applied(tmp_path: Path) -> None:
    adapter = _rank_one_adapter(tmp_path / "adapter.gguf")
    options = ModelOptions(n_ctx=256, adapters=[Adapter(path=str(adapter), scale=0.5)])
    async with resolve_model(ModelRole(spec="builtin/smollm2-135m", options=options)) as built:
        assert isinstance(built, LlamaCppModel)
        assert re.search(r" lora=[0-9a-f]{16}\*0\.5$", built.cache_identity)
