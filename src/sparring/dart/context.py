"""What every stage of one DART run shares: its config, store, data, models, judges, the
global archive and cell statistics, and one way to run a plan through the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparring.dart.config import DartConfig
from sparring.dart.directions import Cell, CellStats
from sparring.dart.diversity import DiversityArchive, Embedder
from sparring.dart.evaluation import last_kept
from sparring.dart.slots import ModelSlot
from sparring.dart.splits import DartData
from sparring.engine import Engine, target_executor
from sparring.errors import StageStopped
from sparring.judges import Judge
from sparring.models import ChatModel
from sparring.store import Store
from sparring.train import LoRAConfig, SFTExample, StepInfo
from sparring.types import AttemptResult, AttemptSpec


@dataclass
class DartRun:
    """One DART run against a store: its resources and the state rounds pass on."""

    config: DartConfig
    store: Store
    run_id: str
    data: DartData
    judge: Judge
    """The training judge: it picks what the target learns and grades every stage."""
    embedder: Embedder
    workdir: Path
    """Where the adapters trained by this run go."""
    progress: bool = True
    """Show the engine's progress bar."""
    say: Callable[[str], None] = field(default=lambda line: None)
    """Receives one line per stage (counts and rates only, never attack or answer text)."""
    second_judge: Judge | None = None
    """Grades the held-out evaluations beside the training judge (None: it alone)."""
    target: ModelSlot = field(init=False)
    red: ModelSlot = field(init=False)
    archive: DiversityArchive = field(init=False)
    """Every accepted attack of every round (and the seeds), for global novelty."""
    stats: dict[Cell, CellStats] = field(default_factory=dict)
    last_attack: dict[str, tuple[str, str]] = field(default_factory=dict)
    """behavior id → (latest attack on it, the target's first answer)."""

    def __post_init__(self) -> None:
        self.target = self.base_target()
        self.red = ModelSlot("red", self.config.red, self.workdir)
        self.archive = DiversityArchive(
            self.embedder, max_cosine=self.config.max_cosine, max_bleu=self.config.max_bleu
        )
        self.behaviors = {b.id: b for b in self.data.all}

    def base_target(self) -> ModelSlot:
        """A slot holding the untrained target."""
        return ModelSlot("target", self.config.target, self.workdir, self.config.target_scale)

    def chat(self, slot: ModelSlot) -> AbstractAsyncContextManager[ChatModel]:
        """The slot's model, loaded for the run's concurrency (use with ``async with``)."""
        return slot.chat_model(n_seq_max=self.config.concurrency)

    def record(self, step: str, payload: dict[str, Any]) -> None:
        """Store a finished stage; a resumed run skips or replays it from this record."""
        self.store.record_step(self.run_id, step, payload)

    async def run_phase(
        self,
        model: ChatModel,
        plan: Sequence[AttemptSpec],
        *,
        judged: bool,
        evaluation: bool = False,
    ) -> dict[str, AttemptResult]:
        """Run ``plan`` through the engine (judging answers when ``judged``; by the second
        judge too for an ``evaluation``, the training judge's verdict first) and return
        every attempt of it by key; raises StageStopped when the engine stops early."""
        engine = Engine(
            self.store, self.run_id, concurrency=self.config.concurrency, progress=self.progress
        )
        judges = [self.judge] if judged else []
        if judged and evaluation and self.second_judge is not None:
            judges.append(self.second_judge)
        executor = target_executor(model, judges, self.behaviors, store=self.store)
        outcome = await engine.run(plan, executor, last=False)
        if outcome.status != "finished":
            raise StageStopped(outcome.status, self.run_id)
        wanted = {s.key for s in plan}
        return {
            a.spec.key: a for a in self.store.iter_attempts(self.run_id) if a.spec.key in wanted
        }

    def train(
        self,
        slot: ModelSlot,
        examples: Sequence[SFTExample],
        lora: LoRAConfig,
        r: int,
        suffix: str = "",
    ) -> dict[str, Any]:
        """Fine-tune ``slot`` for round ``r`` (its seed is the run's plus ``r``; its
        checkpoint folder ends ``rN`` + ``suffix``) and return the checkpoint record; with no
        examples its adapter stays and the record names it."""
        if not examples:
            return adapter_paths(slot)
        progress = self.training_progress(slot.role)
        return slot.train(examples, lora, f"r{r}{suffix}", self.config.seed + r, progress)

    def training_progress(self, role: str) -> Callable[[StepInfo], None]:
        """A LoRA training callback that says about ten lines per training run."""

        def show(info: StepInfo) -> None:
            every = max(1, info.total_steps // 10)
            if info.step % every == 0 or info.step == info.total_steps:
                self.say(
                    f"    {role} LoRA step {info.step}/{info.total_steps}: loss {info.loss:.3f}, "
                    f"{info.elapsed_s:.0f} s"
                )

        return show


def adapter_paths(slot: ModelSlot) -> dict[str, str | None]:
    """The slot's current adapter, as stored in a training step."""
    return {
        "adapter_dir": str(slot.adapter_dir) if slot.adapter_dir else None,
        "adapter_gguf": str(slot.adapter_gguf) if slot.adapter_gguf else None,
    }


def stored_adapter(payload: dict[str, Any]) -> dict[str, str | None]:
    """The adapter a stored training step names, as ``ModelSlot.restore`` arguments."""
    return {"adapter_dir": payload.get("adapter_dir"), "adapter_gguf": payload.get("adapter_gguf")}


def target_adapter(steps: Mapping[str, dict[str, Any]]) -> dict[str, str | None]:
    """The target adapter in force after the last stored round (all None: the base
    target): the last round's training, unless its gate rejected the round and kept the
    one before (``rN/gate``)."""
    kept: dict[str, str | None] = {"adapter_dir": None, "adapter_gguf": None}
    r = 1
    while f"r{r}/target-train" in steps:
        gate = steps.get(f"r{r}/gate")
        if gate is not None and gate["rejected"]:
            kept = stored_adapter(gate["kept"])
        else:
            kept = stored_adapter(steps[f"r{r}/target-train"])
        r += 1
    return kept


def adapter_rounds(steps: Mapping[str, dict[str, Any]], r: int) -> int:
    """How many rounds before ``r`` the target adapter in force was trained in: rounds that
    trained (found a new safe answer) and that the gate did not reject. A rejected round's
    training is dropped, so it does not count."""
    return sum(
        1
        for k in range(1, r)
        if steps.get(f"r{k}/target-train", {}).get("with_safe_answer", 0)
        and not (steps.get(f"r{k}/gate") or {}).get("rejected")
    )


def kept_evaluation(steps: Mapping[str, dict[str, Any]], r: int) -> dict[str, Any]:
    """The stored evaluation of the target in force before round ``r``: that of the last
    earlier round the gate kept, else the base target's (``r0/eval``)."""
    return steps[f"r{last_kept(steps.get(f'r{k}/gate') for k in range(1, r))}/eval"]
