"""Settings and records of a LoRA fine-tuning run.

``LoRAConfig`` is everything that shapes a run besides the data and the seed; ``TrainRecord``
is what a finished run writes next to its adapter (``train_record.json``), so that a DART
iteration can be traced, checkpointed and resumed from disk.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sparring.types import Frozen

__all__ = [
    "DEFAULT_TARGET_MODULES",
    "QK_MODULES",
    "RECORD_FILE",
    "LoRAConfig",
    "Precision",
    "StepInfo",
    "TrainRecord",
]

DEFAULT_TARGET_MODULES: tuple[str, ...] = ("v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Linear layers that get LoRA by default. q_proj/k_proj are left out: llama-architecture
GGUFs store them with rows permuted for rotary embeddings, and while the export handles
that, the default keeps to layers whose rows mean the same in both formats."""

QK_MODULES = frozenset({"q_proj", "k_proj"})
"""Projections whose rows llama-architecture GGUF files store permuted."""

RECORD_FILE = "train_record.json"
"""Name of the run record written beside the adapter files."""

Precision = Literal["auto", "fp32", "bf16"]
"""Numeric precision of a training run; see ``LoRAConfig.precision``."""


class LoRAConfig(Frozen):
    """How to fine-tune: LoRA shape, optimiser, schedule and batching.

    One optimiser step sees ``batch_size * grad_accum`` examples. The run lasts ``epochs``
    passes over the data, or exactly ``max_steps`` optimiser steps when that is set (the
    data is then cycled, reshuffled each pass). The learning rate rises linearly from 0 over
    the first ``warmup_ratio`` of the steps, then falls linearly towards 0 at the end.
    """

    rank: int = Field(16, ge=1, le=1024, description="LoRA rank r (inner dimension).")
    alpha: float = Field(32.0, gt=0.0, description="LoRA alpha; updates are scaled by alpha/r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout probability on LoRA input.")
    target_modules: tuple[str, ...] = Field(
        DEFAULT_TARGET_MODULES,
        min_length=1,
        description="Names of the linear layers that get LoRA (last name component).",
    )
    learning_rate: float = Field(1e-4, gt=0.0, le=1.0, description="Peak AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW decoupled weight decay.")
    epochs: int = Field(1, ge=1, description="Passes over the data when max_steps is unset.")
    max_steps: int | None = Field(
        None, ge=1, description="Optimiser steps to run; overrides epochs when set."
    )
    batch_size: int = Field(4, ge=1, description="Examples per forward pass.")
    grad_accum: int = Field(1, ge=1, description="Forward passes per optimiser step.")
    max_len: int = Field(512, ge=8, description="Longest training sequence, tokens.")
    warmup_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of optimiser steps spent warming up."
    )
    max_grad_norm: float | None = Field(
        1.0, gt=0.0, description="Clip the gradient's global L2 norm to this; None disables."
    )
    precision: Precision = Field(
        "auto",
        description="fp32, bf16 (autocast) or auto: bf16 on CUDA, fp32 on CPU, where bf16 "
        "autocast is slower on CPUs without native bf16 (see benchmarks/train_step.py).",
    )

    @field_validator("target_modules")
    @classmethod
    def _distinct_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value) or any(not name.strip() for name in value):
            raise ValueError("target_modules must be distinct, non-empty layer names")
        return value

    @property
    def examples_per_step(self) -> int:
        """Examples that contribute to one optimiser step."""
        return self.batch_size * self.grad_accum


class StepInfo(Frozen):
    """Progress after one optimiser step, as given to the progress callback."""

    step: int = Field(ge=1, description="Optimiser steps done so far.")
    total_steps: int = Field(ge=1, description="Optimiser steps the run will take.")
    loss: float = Field(description="Mean cross-entropy per response token in this step, nats.")
    learning_rate: float = Field(ge=0.0, description="Learning rate used for this step.")
    elapsed_s: float = Field(ge=0.0, description="Wall time since training started, seconds.")


class TrainRecord(Frozen):
    """What a finished run wrote next to its adapter; enough to trace and resume it."""

    config: LoRAConfig
    seed: int
    base_model: str = Field(description="The base model's name or path, as transformers has it.")
    examples: int = Field(ge=1, description="Training examples given.")
    truncated: int = Field(ge=0, description="Examples cut to fit max_len.")
    steps: int = Field(ge=1, description="Optimiser steps taken.")
    response_tokens: int = Field(ge=1, description="Loss-bearing tokens seen, all steps.")
    losses: tuple[float, ...] = Field(description="Mean loss per response token, per step, nats.")
    learning_rates: tuple[float, ...] = Field(description="Learning rate of each step.")
    precision: Literal["fp32", "bf16"]
    device: str
    wall_time_s: float = Field(ge=0.0, description="Training wall time, seconds.")
    versions: dict[str, str] = Field(description="torch, transformers and peft versions.")
