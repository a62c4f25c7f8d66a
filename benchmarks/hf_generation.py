"""Throughput of the transformers backend (``hf/``) on CPU or GPU.

Prints, for one model: load time; a sample answer; then, over eight prompts, generated
tokens per second (end to end, prompt processing included, all rows together) for batch 1
(eight calls in turn), batch 8 (one call), eight concurrent one-conversation calls (which
the backend coalesces into batches), and on CPU batch 1 again with bfloat16 weights.

    python benchmarks/hf_generation.py [--spec hf/builtin/qwen2.5-coder-0.5b]
        [--max-tokens 32] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import torch

from sparring.models.hf import HFModel
from sparring.types import GenerationParams, Message

PROMPTS = [
    "What is the capital of France?",
    "Explain what a hash table is in two sentences.",
    "Write a Python function that reverses a string.",
    "Give three tips for learning a new language.",
    "What causes the seasons on Earth?",
    "Summarise the plot of Romeo and Juliet briefly.",
    "How do I make a cup of green tea?",
    "List four prime numbers greater than ten.",
]


def chat(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


async def timed(model: HFModel, prompts: list[str], params: GenerationParams) -> tuple[float, int]:
    """Wall seconds and generated tokens for one generate call over ``prompts``."""
    start = time.perf_counter()
    answers = await model.generate([chat(p) for p in prompts], params)
    assert all(a.ok for a in answers), [a.error for a in answers if not a.ok]
    return time.perf_counter() - start, sum(a.completion_tokens for a in answers)


async def one_at_a_time(model: HFModel, params: GenerationParams) -> tuple[float, int]:
    """Batch 1: the eight prompts as eight calls, each awaited before the next."""
    start, tokens = time.perf_counter(), 0
    for p in PROMPTS:
        [answer] = await model.generate([chat(p)], params)
        tokens += answer.completion_tokens
    return time.perf_counter() - start, tokens


async def concurrent(model: HFModel, params: GenerationParams) -> tuple[float, int]:
    """Eight one-conversation calls in flight at once, coalesced by the backend."""
    start = time.perf_counter()
    results = await asyncio.gather(*(model.generate([chat(p)], params) for p in PROMPTS))
    return time.perf_counter() - start, sum(r[0].completion_tokens for r in results)


def report(label: str, seconds: float, tokens: int) -> None:
    print(f"{label}: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.2f} tok/s", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="hf/builtin/qwen2.5-coder-0.5b")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = HFModel.from_spec(args.spec.removeprefix("hf/"), model_id=args.spec)
    print(
        f"{args.spec} on {model.device}, {torch.get_num_threads()} threads: "
        f"loaded in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    params = GenerationParams(max_tokens=args.max_tokens)
    [answer] = await model.generate([chat(PROMPTS[0])], params)
    print(f"answer: {answer.text!r} ({answer.completion_tokens} tokens)", flush=True)

    report("batch 1 (8 calls in turn)", *await one_at_a_time(model, params))
    report("batch 8 (one call)", *await timed(model, PROMPTS, params))
    report("8 concurrent calls", *await concurrent(model, params))
    if model.device.type == "cpu":
        model.model.to(torch.bfloat16)
        report("bfloat16, batch 1", *await one_at_a_time(model, params))
    await model.aclose()


if __name__ == "__main__":
    asyncio.run(main())
