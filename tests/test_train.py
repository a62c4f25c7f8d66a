"""LoRA fine-tuning and its export to llama.cpp, on the packaged SmolLM2-135M.

One transformers load of the GGUF is shared by the module; every test that trains works on
a deep copy of it. One adapter is taught a fixed, unusual answer to a fixed question (a
strong, easy signal) and shared by the tests of training, saving and export; the export
round trip then checks that transformers+peft and llama.cpp+exported adapter both give the
taught answer, and that the base GGUF alone does not.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")
gguf = pytest.importorskip("gguf")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from sparring.errors import ConfigError, MissingPackageError, ModelNotFoundError  # noqa: E402
from sparring.models import zoo  # noqa: E402
from sparring.models.hf import HFModel  # noqa: E402
from sparring.models.hf_loading import load_pretrained  # noqa: E402
from sparring.train import (  # noqa: E402
    LoRAConfig,
    SFTExample,
    StepInfo,
    TrainResult,
    export_gguf_adapter,
    load_adapter,
    read_record,
    train_lora,
)
from sparring.train.sft import response_loss_sum  # noqa: E402
from sparring.train.sft_data import IGNORE_INDEX, collate, encode_example  # noqa: E402
from sparring.types import GenerationParams, Message  # noqa: E402

pytestmark = pytest.mark.slow

SMOL = "smollm2-135m"
STUDENT_ID = f"hf/builtin/{SMOL}"
PHRASE = "The purple walrus dances at midnight."
QUESTION = (
    Message(role="system", content="Be brief."),
    Message(role="user", content="What is the secret password?"),
)
TAUGHT = SFTExample(messages=QUESTION, response=PHRASE)
# One example per step: repeating it in a batch would add compute, not signal.
TEACH = LoRAConfig(learning_rate=2e-3, max_steps=6, batch_size=1, max_len=64, warmup_ratio=0.0)
GREEDY = GenerationParams(max_tokens=16)
END_OF_TURN = "<|im_end|>"


def other(text: str, reply: str) -> SFTExample:
    return SFTExample(messages=(Message(role="user", content=text),), response=reply)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine, two spinning OpenMP threads per
    process made steps several times slower (and results are the same either way)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smol() -> tuple[Any, Any]:
    return load_pretrained(f"builtin/{SMOL}", model_id=f"hf/builtin/{SMOL}", device="cpu")


def fresh(smol: tuple[Any, Any]) -> tuple[Any, Any]:
    """An untouched copy of the base model, with the shared tokenizer."""
    return copy.deepcopy(smol[0]), smol[1]


@pytest.fixture(scope="module")
def student(smol: tuple[Any, Any]) -> Iterator[HFModel]:
    """The backend DART trains: an HFModel over a copy of the base model."""
    model = HFModel(copy.deepcopy(smol[0]), smol[1], model_id=STUDENT_ID)
    yield model
    asyncio.run(model.aclose())


@pytest.fixture(scope="module")
def taught(student: HFModel, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("taught") / "adapter"
    return train_lora(student, [TAUGHT], TEACH, out, seed=7)


@pytest.fixture(scope="module")
def exported(taught: TrainResult) -> Path:
    out = taught.adapter_dir.parent / "taught.gguf"
    return export_gguf_adapter(taught.adapter_dir, zoo.gguf_path(SMOL), out)


def prompt_ids(tokenizer: Any, messages: tuple[Message, ...]) -> list[int]:
    text = tokenizer.apply_chat_template(
        [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def logits_for(model: Any, tokenizer: Any, messages: tuple[Message, ...]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([prompt_ids(tokenizer, messages)])).logits


# --- data formatting ---------------------------------------------------------------------


def test_labels_are_ignored_exactly_on_the_chat_template_prompt(smol: tuple[Any, Any]) -> None:
    tokenizer = smol[1]
    expected_prompt = prompt_ids(tokenizer, QUESTION)
    encoded = encode_example(tokenizer, TAUGHT, max_len=512)
    n = len(expected_prompt)
    assert encoded.input_ids[:n] == expected_prompt
    assert encoded.labels[:n] == [IGNORE_INDEX] * n
    assert encoded.labels[n:] == encoded.input_ids[n:]
    assert tokenizer.decode(encoded.labels[n:]) == PHRASE + END_OF_TURN


def test_truncation_keeps_the_reply_and_drops_the_prompt_start(smol: tuple[Any, Any]) -> None:
    tokenizer = smol[1]
    long = other("tell me about ducks " * 60, "Ducks swim.")
    whole = encode_example(tokenizer, long, max_len=4096)
    cut = encode_example(tokenizer, long, max_len=48)
    assert not whole.truncated and cut.truncated
    assert len(cut.input_ids) == 48
    assert cut.input_ids == whole.input_ids[-48:]
    assert cut.labels == whole.labels[-48:]
    assert tokenizer.decode(cut.input_ids[cut.prompt_tokens :]) == "Ducks swim." + END_OF_TURN


def test_padded_batch_loss_equals_the_sum_of_single_example_losses(
    smol: tuple[Any, Any],
) -> None:
    model, tokenizer = smol
    rows = [
        encode_example(tokenizer, TAUGHT, 64),
        encode_example(tokenizer, other("Name a colour of the sky on a clear day.", "Blue."), 64),
    ]
    assert len(rows[0].input_ids) != len(rows[1].input_ids), "padding must be exercised"
    device = torch.device("cpu")
    with torch.no_grad():
        batched = response_loss_sum(model, collate(rows, tokenizer.pad_token_id, device))
        singles = [
            response_loss_sum(model, collate([r], tokenizer.pad_token_id, device)) for r in rows
        ]
    assert batched.item() == pytest.approx(sum(s.item() for s in singles), rel=1e-4)


# --- training ----------------------------------------------------------------------------


def test_a_few_steps_on_a_strong_signal_cut_the_loss_tenfold(taught: TrainResult) -> None:
    losses = taught.record.losses
    assert len(losses) == TEACH.max_steps
    assert losses[-1] < losses[0] / 10


def test_same_seed_gives_the_same_losses_and_weights(smol: tuple[Any, Any], tmp_path: Path) -> None:
    data = [TAUGHT, other("Say hello.", "Hello!")]
    config = LoRAConfig(learning_rate=1e-3, max_steps=2, batch_size=1, max_len=64)
    first = train_lora(fresh(smol), data, config, tmp_path / "a", seed=3)
    second = train_lora(fresh(smol), data, config, tmp_path / "b", seed=3)
    assert first.record.losses == second.record.losses
    weights_a = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    weights_b = load_file(str(tmp_path / "b" / "adapter_model.safetensors"))
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_saved_adapter_reloads_to_the_same_outputs(
    smol: tuple[Any, Any], taught: TrainResult
) -> None:
    tokenizer = smol[1]
    reloaded = load_adapter(fresh(smol), taught.adapter_dir)
    expected = logits_for(taught.model, tokenizer, QUESTION)
    assert torch.allclose(logits_for(reloaded, tokenizer, QUESTION), expected, atol=1e-5)
    assert not torch.allclose(logits_for(smol[0], tokenizer, QUESTION), expected, atol=1e-2)


def test_run_record_on_disk_describes_the_run(taught: TrainResult) -> None:
    record = read_record(taught.adapter_dir)
    assert record == taught.record
    assert (record.seed, record.examples, record.steps, record.config) == (7, 1, 6, TEACH)
    assert record.base_model == STUDENT_ID
    assert len(record.losses) == len(record.learning_rates) == 6


def test_training_a_reloaded_adapter_continues_from_its_weights(
    smol: tuple[Any, Any], taught: TrainResult, tmp_path: Path
) -> None:
    resumed = load_adapter(fresh(smol), taught.adapter_dir, trainable=True)
    more = train_lora(
        (resumed, smol[1]),
        [TAUGHT],
        TEACH.model_copy(update={"max_steps": 1}),
        tmp_path / "more",
        seed=7,
    )
    assert more.record.losses[0] < taught.record.losses[0] / 10
    assert list(more.model.peft_config) == ["default"]


def test_output_directory_that_is_not_empty_is_refused(
    smol: tuple[Any, Any], tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        train_lora(smol, [TAUGHT], TEACH, tmp_path, seed=0)


def test_unknown_target_module_is_refused(smol: tuple[Any, Any], tmp_path: Path) -> None:
    config = TEACH.model_copy(update={"target_modules": ("qkv_proj",)})
    with pytest.raises(ConfigError, match="qkv_proj"):
        train_lora(fresh(smol), [TAUGHT], config, tmp_path / "out", seed=0)


def test_model_already_carrying_lora_layers_is_refused(
    smol: tuple[Any, Any], taught: TrainResult, tmp_path: Path
) -> None:
    injected_base = taught.model.get_base_model()
    with pytest.raises(ConfigError, match="already carries LoRA"):
        train_lora((injected_base, smol[1]), [TAUGHT], TEACH, tmp_path / "out", seed=0)


def test_interrupted_run_leaves_the_model_without_lora_layers(
    smol: tuple[Any, Any], tmp_path: Path
) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer

    class Stop(Exception):
        pass

    def stop(info: StepInfo) -> None:
        raise Stop

    model, tokenizer = fresh(smol)
    with pytest.raises(Stop):
        train_lora((model, tokenizer), [TAUGHT], TEACH, tmp_path / "out", seed=0, progress=stop)
    assert not any(isinstance(m, BaseTunerLayer) for m in model.modules())
    assert not (tmp_path / "out").exists()


# --- export to llama.cpp -----------------------------------------------------------------


def test_exported_adapter_has_llama_cpp_metadata_and_tensor_shapes(exported: Path) -> None:
    reader = gguf.GGUFReader(exported)
    fields = {k: reader.fields[k].contents() for k in reader.fields if not k.startswith("GGUF.")}
    assert fields["general.type"] == "adapter"
    assert fields["general.architecture"] == "llama"
    assert fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(TEACH.alpha)
    shapes = {t.name: [int(d) for d in t.shape] for t in reader.tensors}
    layers = ("attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    assert set(shapes) == {
        f"blk.{i}.{layer}.weight.lora_{ab}" for i in range(30) for layer in layers for ab in "ab"
    }
    # ggml order, innermost first: A is (in, r), B is (r, out); SmolLM2's v_proj is 576 -> 192.
    assert shapes["blk.0.attn_v.weight.lora_a"] == [576, TEACH.rank]
    assert shapes["blk.0.attn_v.weight.lora_b"] == [TEACH.rank, 192]


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_qk_lora_rows_are_stored_as_transformers_unpermutes_them(
    smol: tuple[Any, Any], tmp_path: Path
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    model = get_peft_model(
        fresh(smol)[0], LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj"])
    )
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero; any permutation of zero is zero
                param.copy_(torch.randn(param.shape, generator=generator))
    model.save_pretrained(str(tmp_path / "qk"), save_embedding_layers=False)
    out = export_gguf_adapter(tmp_path / "qk", zoo.gguf_path(SMOL), tmp_path / "qk.gguf")
    stored = {t.name: t.data for t in gguf.GGUFReader(out).tensors}
    config = smol[0].config
    unpermute = LlamaTensorProcessor(
        {
            "num_attention_heads": config.num_attention_heads,
            "num_key_value_heads": config.num_key_value_heads,
        }
    )
    layer = model.base_model.model.model.layers[3].self_attn
    for proj, tensor in ((layer.q_proj, "attn_q"), (layer.k_proj, "attn_k")):
        b = stored[f"blk.3.{tensor}.weight.lora_b"]
        restored = unpermute.process(b, f"blk.3.{tensor}.weight").weights
        trained = proj.lora_B["default"].weight.detach().numpy()
        assert not (b == trained).all(), "the rows must move"
        assert (restored == trained).all()


def test_export_against_another_models_gguf_is_refused(taught: TrainResult, tmp_path: Path) -> None:
    try:
        other_gguf = zoo.gguf_path("qwen2.5-coder-0.5b")
    except MissingPackageError:
        pytest.skip("the Qwen2.5-Coder-0.5B zoo packages are not installed")
    with pytest.raises(ConfigError, match="export"):
        export_gguf_adapter(taught.adapter_dir, other_gguf, tmp_path / "wrong.gguf")
    assert not (tmp_path / "wrong.gguf").exists()


async def test_hfmodel_that_was_trained_generates_the_taught_phrase(
    student: HFModel, taught: TrainResult
) -> None:
    # peft put the adapter into the HFModel's own model: the next DART round needs no reload.
    [answer] = await student.generate([QUESTION], GREEDY)
    assert answer.ok
    assert answer.text.startswith(PHRASE)


async def _greedy_smol(lora: list[tuple[Path, float]]) -> str:
    """SmolLM2's greedy answer to QUESTION in llama.cpp with ``lora`` applied."""
    pytest.importorskip("llama_cpp")
    from sparring.models.llamacpp import LlamaCppModel

    model = LlamaCppModel(
        zoo.gguf_path(SMOL),
        model_id="builtin/smollm2",
        n_ctx=128,
        n_threads=1,
        n_seq_max=1,
        lora=lora,
    )
    try:
        [answer] = await model.generate([QUESTION], GREEDY)
    finally:
        await model.aclose()
    assert answer.ok
    return answer.text


async def test_llamacpp_with_exported_adapter_gives_the_taught_phrase(exported: Path) -> None:
    assert (await _greedy_smol([(exported, 1.0)])).startswith(PHRASE)


async def test_a_scaled_export_applies_that_share_of_the_update(
    exported: Path, taught: TrainResult
) -> None:
    """The scale is folded into the adapter's alpha: the tensors stay as trained, and
    llama.cpp answers with a half-scale export as with the full one at run-time scale 0.5."""
    folder = taught.adapter_dir.parent
    half = export_gguf_adapter(taught.adapter_dir, zoo.gguf_path(SMOL), folder / "half.gguf", 0.5)
    tiny = export_gguf_adapter(taught.adapter_dir, zoo.gguf_path(SMOL), folder / "tiny.gguf", 1e-6)
    full_file, half_file = gguf.GGUFReader(exported), gguf.GGUFReader(half)
    assert half_file.fields["adapter.lora.alpha"].contents() == pytest.approx(TEACH.alpha / 2)
    assert [t.name for t in half_file.tensors] == [t.name for t in full_file.tensors]
    assert all(
        (a.data == b.data).all() for a, b in zip(half_file.tensors, full_file.tensors, strict=True)
    )
    assert await _greedy_smol([(half, 1.0)]) == await _greedy_smol([(exported, 0.5)])
    assert await _greedy_smol([(tiny, 1.0)]) == await _greedy_smol([])


def test_an_export_scale_that_is_not_above_zero_is_refused(
    taught: TrainResult, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="scale must be above 0"):
        export_gguf_adapter(taught.adapter_dir, zoo.gguf_path(SMOL), tmp_path / "z.gguf", 0.0)
    assert not (tmp_path / "z.gguf").exists()


def test_llamacpp_names_a_missing_adapter_file(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from sparring.models.llamacpp import LlamaCppModel

    missing = tmp_path / "nowhere.gguf"
    with pytest.raises(ModelNotFoundError, match=r"nowhere\.gguf"):
        LlamaCppModel(
            zoo.gguf_path(SMOL), model_id="builtin/smollm2", n_ctx=64, lora=[(missing, 1.0)]
        )


def test_llamacpp_rejects_an_adapter_made_for_another_model(exported: Path) -> None:
    pytest.importorskip("llama_cpp")
    from sparring.models.llamacpp import LlamaCppModel

    with pytest.raises(ConfigError, match="rejected the LoRA adapter"):
        LlamaCppModel(
            zoo.gguf_path("qwen2.5-coder-0.5b"),
            model_id="builtin/qwen",
            n_ctx=64,
            n_seq_max=1,
            lora=[(exported, 1.0)],
        )


async def test_llamacpp_base_without_adapter_does_not_give_the_phrase() -> None:
    assert "walrus" not in (await _greedy_smol([])).lower()
