"""A trainable model in the DART loop: a base GGUF plus the latest LoRA adapter.

Training runs in transformers (the GGUF dequantised, LoRA through peft); generation runs
in llama.cpp on the quantised base with the exported adapter applied, which on CPU is many
times faster than generating with transformers. Each round's adapter continues from the
previous one, and its paths are recorded so a resumed run picks up from the last finished
round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparring.errors import ConfigError
from sparring.models import parse_spec, zoo
from sparring.models.llamacpp import LlamaCppModel
from sparring.models.llamacpp_lora import adapter_digest
from sparring.train import (
    LoRAConfig,
    SFTExample,
    StepInfo,
    blend_adapters,
    export_gguf_adapter,
    load_adapter,
    train_lora,
)


def base_gguf(spec: str) -> Path:
    """The GGUF file of a ``builtin/NAME`` or ``llamacpp/PATH`` spec."""
    parsed = parse_spec(spec)
    if parsed.provider == "builtin":
        return zoo.gguf_path(parsed.name)
    if parsed.provider == "llamacpp":
        return Path(parsed.name).expanduser()
    raise ConfigError(f"{spec}: DART trains builtin/NAME or llamacpp/PATH.gguf models only")


@dataclass
class ModelSlot:
    """One model the loop trains (the target or the red model)."""

    role: str
    """``target`` or ``red``; names checkpoint folders and model ids."""
    name: str
    """Model spec of the base model: ``builtin/NAME`` or ``llamacpp/PATH.gguf``."""
    workdir: Path
    """Where this run's checkpoints go."""
    scale: float = 1.0
    """Share of the trained update the model applies (``export_gguf_adapter``'s scale):
    generation and export use the adapter at this scale; training continues it unscaled."""
    adapter_dir: Path | None = None
    """The latest peft adapter folder, None before the first training round."""
    adapter_gguf: Path | None = None
    """The latest adapter exported for llama.cpp."""
    _hf: Any = field(default=None, repr=False)

    @property
    def gguf(self) -> Path:
        """The base model file."""
        return base_gguf(self.name)

    @property
    def model_id(self) -> str:
        """Names the weights as they stand. The store's completion cache is keyed by it, so
        an adapter is named by its content: two runs' round-1 adapters share a folder name
        but not their weights (naming them by folder once served one run's cached replies
        to the other)."""
        # The spec without its provider (the zoo name, or the path): the form model ids had
        # before specs had one grammar, kept so that stored runs' cached replies still match.
        base = parse_spec(self.name).name
        if self.adapter_gguf is None:
            return f"{self.role}:{base}"
        digest = adapter_digest(self.adapter_gguf)
        return f"{self.role}:{base}+{self.adapter_gguf.parent.name}@{digest}"

    def chat_model(self, n_seq_max: int = 16, n_ctx: int = 2048) -> LlamaCppModel:
        """The model as it stands (base + latest adapter), for generation."""
        return LlamaCppModel(
            self.gguf,
            model_id=self.model_id,
            n_ctx=n_ctx,
            n_seq_max=n_seq_max,
            lora=[(self.adapter_gguf, 1.0)] if self.adapter_gguf else (),
        )

    def restore(self, adapter_dir: str | None, adapter_gguf: str | None) -> None:
        """Point the slot at checkpoints recorded by an earlier (resumed) round."""
        self.adapter_dir = Path(adapter_dir) if adapter_dir else None
        self.adapter_gguf = Path(adapter_gguf) if adapter_gguf else None

    def blend(self, first: Path, second: Path, weight: float, round_name: str) -> None:
        """Point the slot at ``weight`` times adapter ``first``'s update plus ``1 - weight``
        times ``second``'s (``blend_adapters``), written and exported into the checkpoint
        folder ``ROLE-ROUND_NAME``."""
        out = blend_adapters(first, second, weight, self.workdir / f"{self.role}-{round_name}")
        gguf = export_gguf_adapter(out, self.gguf, out / "adapter.gguf", self.scale)
        self.adapter_dir, self.adapter_gguf = out, gguf

    def train(
        self,
        examples: Sequence[SFTExample],
        config: LoRAConfig,
        round_name: str,
        seed: int,
        progress: Callable[[StepInfo], None] | None = None,
    ) -> dict[str, Any]:
        """Fine-tune on ``examples`` (continuing the latest adapter) and export it;
        ``progress`` is called after every optimiser step.

        Returns the checkpoint record stored with the round: adapter paths, losses, time.
        """
        from sparring.models.hf import HFModel

        if self._hf is None:
            parsed = parse_spec(self.name)
            source = self.name if parsed.provider == "builtin" else parsed.name
            self._hf = HFModel.from_spec(source, model_id=f"hf/{source}", device="auto")
        model: Any = self._hf
        if self.adapter_dir is not None:
            peft_model = load_adapter(self._hf, self.adapter_dir, trainable=True)
            # Training continues the adapter at its own rank and alpha: a blend (``blend``)
            # has the ranks of both adapters it was made from, at their alpha/rank scale.
            current = peft_model.peft_config[peft_model.active_adapter]
            config = config.model_copy(
                update={"rank": int(current.r), "alpha": float(current.lora_alpha)}
            )
            model = (peft_model, self._hf.tokenizer)
        out = self.workdir / f"{self.role}-{round_name}"
        result = train_lora(model, examples, config, out, seed=seed, progress=progress)
        # peft put the LoRA layers into the base model itself; take them out so the next
        # round loads its adapter onto a plain base, exactly as a resumed run does.
        result.model.unload()
        gguf = export_gguf_adapter(result.adapter_dir, self.gguf, out / "adapter.gguf", self.scale)
        self.adapter_dir, self.adapter_gguf = result.adapter_dir, gguf
        record = result.record
        return {
            "adapter_dir": str(result.adapter_dir),
            "adapter_gguf": str(gguf),
            "examples": record.examples,
            "steps": record.steps,
            "first_loss": record.losses[0],
            "last_loss": record.losses[-1],
            "wall_time_s": record.wall_time_s,
        }
