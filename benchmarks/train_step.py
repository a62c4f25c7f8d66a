"""LoRA training step time, and generation speed from the trained weights.

For each model: seconds per optimiser step of ``train_lora`` at batch 4 x 256 tokens (half
prompt, half reply, loss on the reply) in fp32 and in bf16 autocast; then generation
tokens/s from the trained adapter through llama.cpp (base GGUF + exported adapter, and the
base alone for the adapter's overhead) and through transformers+peft, with 1 and 8
conversations in flight.

    python benchmarks/train_step.py [--models smollm2-135m,qwen2.5-coder-0.5b] [--steps 3]
        [--threads N] [--max-tokens 48] [--precisions fp32,bf16]

The first optimiser step of each run is warm-up and not counted; the figure is the median
of the rest (``--steps 0`` runs and reports that one step alone, for slow settings).
Figures move with other load on the machine (the load average is printed); run twice when
they look off. On a shared machine ``--threads 1`` avoids oversubscribing the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from sparring.models import zoo
from sparring.models.base import ChatModel
from sparring.models.hf import HFModel
from sparring.models.hf_loading import load_pretrained
from sparring.models.llamacpp import LlamaCppModel
from sparring.train import LoRAConfig, SFTExample, StepInfo, export_gguf_adapter, train_lora
from sparring.types import GenerationParams, Message

SEQ_TOKENS = 256
BATCH = 4
TOPICS = ("rivers", "volcanoes", "bridges", "orchards", "lighthouses", "glaciers", "markets")
PROMPTS = (
    "Write a detailed tutorial on sorting algorithms in Python, with code.",
    "Explain how a hash map works internally, step by step.",
    "Describe the history of the Unix operating system in several paragraphs.",
    "Write a long story about a robot who learns to paint.",
)


def _examples(tokenizer: Any) -> list[SFTExample]:
    """Examples that truncate to exactly SEQ_TOKENS tokens, about half of them reply."""
    examples = []
    for i in range(BATCH):
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"Tell me everything about {topic}. " * 40
        reply = f"Here is what I know about {topic}: they matter to many people. " * 12
        examples.append(
            SFTExample(messages=(Message(role="user", content=prompt),), response=reply)
        )
    return examples


def _step_seconds(
    model: Any, tokenizer: Any, precision: str, steps: int, out: Path
) -> tuple[float, Any]:
    """Median seconds per optimiser step after one warm-up step, and the trained model."""
    config = LoRAConfig(
        max_steps=steps + 1, batch_size=BATCH, max_len=SEQ_TOKENS, precision=precision
    )
    marks: list[float] = []

    def note(info: StepInfo) -> None:
        marks.append(info.elapsed_s)

    result = train_lora(
        (model, tokenizer), _examples(tokenizer), config, out, seed=0, progress=note
    )
    # With --steps 0 the single step is reported, warm-up included.
    durations = [b - a for a, b in itertools.pairwise(marks)] or marks
    return statistics.median(durations), result


async def _tokens_per_s(model: ChatModel, in_flight: int, max_tokens: int) -> tuple[float, int]:
    """Completion tokens per wall-clock second with ``in_flight`` conversations at once."""
    params = GenerationParams(max_tokens=max_tokens)
    conversations = [
        [Message(role="user", content=PROMPTS[i % len(PROMPTS)])] for i in range(in_flight)
    ]
    start = time.perf_counter()
    answers = await asyncio.gather(*(model.generate([c], params) for c in conversations))
    elapsed = time.perf_counter() - start
    failed = [a[0].error for a in answers if a[0].error is not None]
    if failed:
        raise SystemExit(f"generation failed: {failed[0]}")
    tokens = sum(a[0].completion_tokens for a in answers)
    return tokens / elapsed, tokens


async def _generation(
    name: str, trained: Any, tokenizer: Any, adapter: Path, threads: int, max_tokens: int
) -> None:
    backends: list[tuple[str, ChatModel]] = []
    for label, with_adapter in (("llama.cpp base", False), ("llama.cpp + adapter", True)):
        llama = LlamaCppModel(
            zoo.gguf_path(name),
            model_id=f"builtin/{name}",
            n_ctx=512,
            n_threads=threads,
            n_seq_max=8,
            lora=[(adapter, 1.0)] if with_adapter else (),
        )
        backends.append((label, llama))
    backends.append(("transformers + peft", HFModel(trained, tokenizer, model_id=name)))
    for label, model in backends:
        try:
            await model.generate(
                [[Message(role="user", content="Hi")]], GenerationParams(max_tokens=2)
            )
            for in_flight in (1, 8):
                rate, tokens = await _tokens_per_s(model, in_flight, max_tokens)
                print(f"  {label:<22} batch {in_flight}: {rate:6.1f} tokens/s ({tokens} tokens)")
        finally:
            await model.aclose()


def main() -> None:
    """Parse flags, then measure training steps and generation for each model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b")
    parser.add_argument("--steps", type=int, default=3, help="Measured optimiser steps per run.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads.")
    parser.add_argument("--max-tokens", type=int, default=48, help="Reply length, tokens.")
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{os.cpu_count()} CPUs, {args.threads} threads, load average {os.getloadavg()[0]:.1f}; "
        f"LoRA r=16 on v/o/gate/up/down, batch {BATCH} x {SEQ_TOKENS} tokens"
    )
    with tempfile.TemporaryDirectory(prefix="sparring-train-bench-") as tmp:
        for name in args.models.split(","):
            start = time.perf_counter()
            model, tokenizer = load_pretrained(f"builtin/{name}", model_id=name, device="cpu")
            print(f"{name}: loaded in {time.perf_counter() - start:.0f} s")
            trained: Any = None
            adapter_dir = Path()
            for precision in args.precisions.split(","):
                if trained is not None:
                    model = trained.unload()
                adapter_dir = Path(tmp) / f"{name}-{precision}"
                seconds, result = _step_seconds(
                    model, tokenizer, precision, args.steps, adapter_dir
                )
                trained = result.model
                print(f"  train step {precision}: {seconds:6.2f} s per step")
            adapter = export_gguf_adapter(
                adapter_dir, zoo.gguf_path(name), Path(tmp) / f"{name}.gguf"
            )
            asyncio.run(
                _generation(name, trained, tokenizer, adapter, args.threads, args.max_tokens)
            )
            del model, trained


if __name__ == "__main__":
    main()
