"""LoRA supervised fine-tuning with a small hand-written torch loop.

The loop is plain AdamW with linear warmup and decay, response-only loss and gradient
accumulation. It was chosen over TRL's SFTTrainer because it is short, deterministic under
a seed, computes logits only over the reply span (the vocabulary projection dominates a
small model's step) and has no trainer machinery to configure on a CPU.

peft adds LoRA layers to the base model in place. ``train_lora`` therefore returns the
trained ``PeftModel``; the model passed in computes with the adapter from then on, which is
what a DART iteration wants (the next round generates with the updated weights). To go on
training the same adapter, pass ``result.model`` back in; ``result.model.unload()`` gives
the plain base model back.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparring.errors import ConfigError
from sparring.train.checkpoint import (
    ModelInput,
    check_out_dir,
    quiet_peft,
    refuse_lora_layers,
    save_run,
    training_packages,
    unpack_model,
)
from sparring.train.config import LoRAConfig, StepInfo, TrainRecord
from sparring.train.sft_data import (
    IGNORE_INDEX,
    Batch,
    EncodedExample,
    SFTExample,
    collate,
    encode_example,
)

__all__ = ["TrainResult", "response_loss_sum", "train_lora"]


@dataclass(frozen=True)
class TrainResult:
    """A finished run: where its adapter is, what it recorded, and the trained model.

    ``model`` is the peft model wrapping the base model that was passed in (now carrying
    the adapter), in eval mode.
    """

    adapter_dir: Path
    record: TrainRecord
    model: Any


def train_lora(
    model: ModelInput,
    examples: Sequence[SFTExample],
    config: LoRAConfig,
    out_dir: Path,
    *,
    seed: int,
    progress: Callable[[StepInfo], None] | None = None,
) -> TrainResult:
    """Fine-tune a LoRA adapter on ``examples`` and save it, with its record, in ``out_dir``.

    ``model`` is a base model (a new adapter is added) or a peft model with a LoRA adapter
    whose rank, alpha and target modules match ``config`` (that adapter trains further).
    The same seed, data and config give the same losses and weights on the same machine.
    ``out_dir`` must not exist or be empty; it is filled only when training has finished,
    so a directory holding ``train_record.json`` is a complete checkpoint.

    Raises ConfigError for a bad out_dir, an unknown target module, a model that already
    carries LoRA layers outside a peft wrapper, or a diverging run; DataError for examples
    the chat template cannot render; MissingPackageError without torch or peft.
    """
    torch, peft = training_packages()
    base, tokenizer, lock, name = unpack_model(model)
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    if not examples:
        raise ConfigError("train_lora: no training examples given; pass at least one")
    encoded = [encode_example(tokenizer, e, config.max_len) for e in examples]
    with lock:
        device = next(base.parameters()).device
        rng_devices = [device.index or 0] if device.type == "cuda" else []
        # A private RNG stream: LoRA init and dropout are seeded without disturbing callers.
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            trained = _with_lora(torch, peft, base, config)
            start = time.perf_counter()
            try:
                run = _optimise(torch, trained, encoded, config, seed, tokenizer, progress)
            except BaseException:
                # A failed run must not leave a half-trained adapter in the caller's model.
                if trained is not base:
                    trained.unload()
                raise
            finally:
                trained.eval()
            wall = time.perf_counter() - start
        record = TrainRecord(
            config=config,
            seed=seed,
            base_model=name,
            examples=len(encoded),
            truncated=sum(e.truncated for e in encoded),
            steps=len(run.losses),
            response_tokens=run.response_tokens,
            losses=tuple(run.losses),
            learning_rates=tuple(run.rates),
            precision=_precision(config, device),
            device=str(device),
            wall_time_s=wall,
            versions=_versions(),
        )
        save_run(trained, record, out_dir)
    return TrainResult(adapter_dir=out_dir, record=record, model=trained)


def _with_lora(torch: Any, peft: Any, base: Any, config: LoRAConfig) -> Any:
    """The peft model to train: ``base`` with a fresh adapter, or its own adapter."""
    if isinstance(base, peft.PeftModel):
        return _continue_adapter(base, config)
    refuse_lora_layers(base)
    linear = {
        n.rsplit(".", 1)[-1] for n, m in base.named_modules() if isinstance(m, torch.nn.Linear)
    }
    missing = sorted(set(config.target_modules) - linear)
    if missing:
        raise ConfigError(
            f"LoRAConfig.target_modules: the model has no linear layer named {', '.join(missing)};"
            f" it has {', '.join(sorted(linear))}"
        )
    lora = peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    with quiet_peft():
        return peft.get_peft_model(base, lora)


def _continue_adapter(model: Any, config: LoRAConfig) -> Any:
    name = model.active_adapter
    current = model.peft_config[name]
    same = (
        getattr(current, "r", None) == config.rank
        and float(getattr(current, "lora_alpha", -1)) == config.alpha
        and set(getattr(current, "target_modules", None) or ()) == set(config.target_modules)
    )
    if not same:
        raise ConfigError(
            f"LoRAConfig: rank, alpha and target_modules must match the adapter being trained "
            f"further (r={getattr(current, 'r', '?')}, alpha={getattr(current, 'lora_alpha', '?')},"
            f" targets={sorted(getattr(current, 'target_modules', None) or ())})"
        )
    for param_name, param in model.named_parameters():
        if f".{name}." in param_name and "lora_" in param_name:
            param.requires_grad_(True)
    return model


def _precision(config: LoRAConfig, device: Any) -> Any:
    if config.precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return config.precision


def _step_groups(n: int, config: LoRAConfig, seed: int, total: int) -> Iterator[list[int]]:
    """Example indices of each optimiser step: seeded shuffles, one pass after another."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    done = 0
    while True:
        order = torch.randperm(n, generator=generator).tolist()
        for start in range(0, n, config.examples_per_step):
            if done == total:
                return
            yield order[start : start + config.examples_per_step]
            done += 1


def _total_steps(n: int, config: LoRAConfig) -> int:
    return config.max_steps or math.ceil(n / config.examples_per_step) * config.epochs


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Multiplier of the peak rate at 0-based ``step``: linear rise, then linear fall."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return (total - step) / (total - warmup)


@dataclass
class _Run:
    """What the optimiser loop measured: per-step loss and rate, loss-bearing tokens."""

    losses: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    response_tokens: int = 0


def _optimise(
    torch: Any,
    model: Any,
    encoded: list[EncodedExample],
    config: LoRAConfig,
    seed: int,
    tokenizer: Any,
    progress: Callable[[StepInfo], None] | None,
) -> _Run:
    """Run the optimiser over the whole schedule."""
    device = next(model.parameters()).device
    precision = _precision(config, device)
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    total = _total_steps(len(encoded), config)
    warmup = math.ceil(config.warmup_ratio * total) if total > 1 else 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, total, warmup))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    run = _Run()
    start = time.perf_counter()
    model.train()
    for group in _step_groups(len(encoded), config, seed, total):
        rows = [encoded[i] for i in group]
        tokens = sum(r.response_tokens for r in rows)
        run.response_tokens += tokens
        step_loss = 0.0
        for first in range(0, len(rows), config.batch_size):
            batch = collate(rows[first : first + config.batch_size], pad_id, device)
            with autocast:
                loss_sum = response_loss_sum(model, batch)
            # Normalised by the whole step's tokens, so accumulation equals one big batch.
            (loss_sum / tokens).backward()
            step_loss += float(loss_sum.item())
        loss = step_loss / tokens
        if not math.isfinite(loss):
            raise ConfigError(
                f"training diverged at step {len(run.losses) + 1} (loss {loss}); "
                "lower LoRAConfig.learning_rate"
            )
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        rate = float(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        run.losses.append(loss)
        run.rates.append(rate)
        if progress is not None:
            progress(
                StepInfo(
                    step=len(run.losses),
                    total_steps=total,
                    loss=loss,
                    learning_rate=rate,
                    elapsed_s=time.perf_counter() - start,
                )
            )
    return run


def response_loss_sum(model: Any, batch: Batch) -> Any:
    """Summed cross-entropy (nats) of ``batch``'s reply tokens under ``model``, a scalar
    tensor; logits are computed only over the reply span (``batch.keep`` positions)."""
    import torch

    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
        logits_to_keep=batch.keep,
    )
    logits = out.logits[:, -batch.keep : -1].float()
    targets = batch.labels[:, batch.labels.shape[1] - batch.keep + 1 :]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def _versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }
