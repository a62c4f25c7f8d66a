"""Aggregate generation throughput of the in-process llama.cpp backend.

Keeps 1, 4 and 16 requests in flight against one model (continuous batching) and prints
completion tokens per wall-clock second at each level, and the 16-vs-1 ratio. Prompts ask
for long answers and every request has the same max_tokens, so most requests stop on the
length limit and levels compare like with like. Every request's prompt is different, so the
backend's prefix reuse saves only the chat template's tokens, at every level alike. Wall time
includes prompt processing; a prefill-only pass per level splits it from decoding.
Levels take turns over several rounds and each level's figure pools its rounds, so that
other load on a shared machine weighs on every level alike; per-round lines show the noise.
Tokens per CPU-second of this process is printed too: it moves less with other load.

It also prints the ceiling the CPU sets on that ratio. Prefill (one long prompt) is the
most efficient batched work llama.cpp does, so its rate in multiply-accumulates per second
bounds what batched decoding can reach; each decoded token also pays for the output layer
(vocabulary x hidden size), which prefill computes for the last prompt token only. The
ceiling is that bound divided by the single-sequence decoding rate.

    python benchmarks/generation.py [--model builtin/qwen2.5-coder-0.5b] [--max-tokens 128]
    python benchmarks/generation.py --extra-buffers --levels 1,16

``--extra-buffers`` measures something else: tokens/s with llama.cpp's extra buffer types
(CPU-specific weight repacking, ``ModelOptions.extra_buffers``) off, sparring's default,
and on, side by side at each level, with the on/off ratio. Both models stay loaded and
take turns on the same prompts, level by level and round by round.

Acceptance target: ratio >= 2.0 on a 2-core machine. The ratio depends on how llama.cpp's
threads wait for each other: sparring's default (passive) costs the single sequence more
than the batch, and OMP_WAIT_POLICY=ACTIVE, faster on an idle machine, lowers the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from dataclasses import dataclass

import gguf
import numpy as np

from sparring.models import ModelOptions, resolve_model, zoo
from sparring.models.base import ChatModel
from sparring.types import GenerationParams, Message

PROMPTS = (
    "Write a detailed tutorial on sorting algorithms in Python, with code.",
    "Explain how a hash map works internally, step by step, with an example in C.",
    "Describe the history of the Unix operating system in several paragraphs.",
    "Write a long story about a robot who learns to paint.",
    "Explain recursion to a beginner, with three worked examples in JavaScript.",
    "Describe how a compiler turns source code into machine code, stage by stage.",
    "Write a long letter from a lighthouse keeper to her brother.",
    "Explain how public-key cryptography works, with a small worked example.",
)
AUDIENCES = (
    "a new student",
    "a retired engineer",
    "a curious child",
    "a busy manager",
    "a visiting scientist",
    "a high-school teacher",
    "a music producer",
    "a data analyst",
    "a novelist",
    "a nurse",
    "a pilot",
    "a chef",
    "a farmer",
    "a lawyer",
    "an architect",
    "a journalist",
)


def prompt(i: int) -> str:
    """The i-th request's prompt. No two of the first 128 are equal (a default run uses 88),
    so requests share only the chat template's prefix: the backend reuses shared prefixes,
    and exact repeats would measure that cache rather than batching."""
    reader = AUDIENCES[i // len(PROMPTS) % len(AUDIENCES)]
    return f"{PROMPTS[i % len(PROMPTS)]} The reader is {reader}."


@dataclass
class Tally:
    """Completion tokens, wall seconds and CPU seconds (this process) pooled over rounds."""

    tokens: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def add(self, other: Tally) -> None:
        """Pool another round into this one."""
        self.tokens += other.tokens
        self.wall_s += other.wall_s
        self.cpu_s += other.cpu_s

    def line(self) -> str:
        """Tokens per wall second, and per CPU second of this process."""
        return (
            f"{self.tokens / self.wall_s:7.1f} tokens/s, {self.tokens / self.cpu_s:6.1f} "
            f"tokens per CPU-s ({self.tokens} tokens in {self.wall_s:.1f} s)"
        )


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _level(
    model: ChatModel, in_flight: int, first: int, requests: int, params: GenerationParams
) -> Tally:
    """Run ``requests`` requests, ``in_flight`` at a time, from prompt number ``first``."""
    todo = iter(range(first, first + requests))
    tally = Tally()

    async def worker() -> None:
        for i in todo:
            conversation = [Message(role="user", content=prompt(i))]
            [completion] = await model.generate([conversation], params)
            if completion.error is not None:
                raise SystemExit(f"request failed: {completion.error}")
            tally.tokens += completion.completion_tokens

    wall, cpu = time.perf_counter(), _cpu_s()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    tally.wall_s, tally.cpu_s = time.perf_counter() - wall, _cpu_s() - cpu
    return tally


def matmul_sizes(path: str) -> tuple[int, int]:
    """(weights multiplied per decoded token, of which the output layer), from the GGUF.
    The token embedding is a lookup, not a product, unless it doubles as the output layer."""
    tensors = {t.name: int(np.prod(t.shape)) for t in gguf.GGUFReader(path).tensors}
    head = tensors.get("output.weight", tensors["token_embd.weight"])
    body = sum(
        n
        for name, n in tensors.items()
        if name.endswith(".weight") and name.startswith("blk.") and not name.endswith("norm.weight")
    )
    return body + head, head


async def prefill_rate(model: ChatModel) -> tuple[float, int]:
    """Prompt tokens computed per second on one long prompt (max_tokens 1), best of three.
    Each try starts differently, so the backend cannot reuse the previous try's prefix."""
    params = GenerationParams(max_tokens=1, temperature=0.0)
    best, tokens = 0.0, 0
    for k in range(3):
        text = f"Note {k}. " + " ".join(PROMPTS * 8)
        before = _prompt_totals(model)[1]
        [c] = await model.generate([[Message(role="user", content=text)]], params)
        tokens = c.prompt_tokens - (_prompt_totals(model)[1] - before)
        best = max(best, tokens / c.latency_s)
    return best, tokens


def _prompt_totals(model: ChatModel) -> tuple[int, int]:
    """(prompt tokens computed, reused from cached prefixes) so far; (0, 0) for a backend
    that does not count them."""
    computed, reused = getattr(model, "prompt_token_totals", (0, 0))
    return int(computed), int(reused)


async def compare_extra_buffers(
    model: str, n_ctx: int, levels: list[int], rounds: int, params: GenerationParams
) -> None:
    """Print tokens/s with extra buffer types off and on at each level, and the ratio."""
    totals = {(on, n): Tally() for on in (False, True) for n in levels}
    async with (
        resolve_model(model, ModelOptions(n_ctx=n_ctx, extra_buffers=False)) as off,
        resolve_model(model, ModelOptions(n_ctx=n_ctx, extra_buffers=True)) as on,
    ):
        pair = {False: off, True: on}
        for loaded in pair.values():
            await loaded.generate(
                [[Message(role="user", content="Hi")]], GenerationParams(max_tokens=4)
            )
        first = 0
        for round_no in range(1, rounds + 1):
            for n in levels:
                for flag, loaded in pair.items():
                    tally = await _level(loaded, n, first, max(n, 2), params)
                    totals[flag, n].add(tally)
                    state = "on " if flag else "off"
                    print(
                        f"round {round_no}: {n:>3} in flight, extra buffers {state} {tally.line()}"
                    )
                first += max(n, 2)
    for n in levels:
        off_tally, on_tally = totals[False, n], totals[True, n]
        wall = (off_tally.tokens / off_tally.wall_s, on_tally.tokens / on_tally.wall_s)
        cpu = (off_tally.tokens / off_tally.cpu_s, on_tally.tokens / on_tally.cpu_s)
        print(
            f"{n:>3} in flight: extra buffers off {wall[0]:6.1f} tokens/s, on {wall[1]:6.1f} "
            f"tokens/s, on/off {wall[1] / wall[0]:.2f}x (per CPU-s of this process: "
            f"{cpu[0]:.1f} vs {cpu[1]:.1f}, {cpu[1] / cpu[0]:.2f}x)"
        )


async def main() -> None:
    """Parse flags, warm the model up, measure each level and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="builtin/qwen2.5-coder-0.5b")
    parser.add_argument("--max-tokens", type=int, default=128, help="Reply length, tokens.")
    parser.add_argument("--levels", default="1,4,16", help="Requests in flight to measure.")
    parser.add_argument("--n-ctx", type=int, default=1024, help="Per-sequence context, tokens.")
    parser.add_argument("--rounds", type=int, default=2, help="Turns taken by each level.")
    parser.add_argument(
        "--extra-buffers", action="store_true", help="Compare extra buffer types off and on."
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    params = GenerationParams(max_tokens=args.max_tokens, temperature=0.0)
    print(
        f"model {args.model}, max_tokens {args.max_tokens}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, OpenMP waiting "
        f"{os.environ.get('OMP_WAIT_POLICY', 'PASSIVE (sparring default)')}"
    )
    if args.extra_buffers:
        await compare_extra_buffers(args.model, args.n_ctx, levels, args.rounds, params)
        return
    totals = {n: Tally() for n in levels}
    prefills = {n: Tally() for n in levels}
    async with resolve_model(args.model, ModelOptions(n_ctx=args.n_ctx)) as model:
        await model.generate([[Message(role="user", content="Hi")]], GenerationParams(max_tokens=4))
        prefill, prompt_tokens = await prefill_rate(model)
        # Levels take turns, round after round, so that load from other processes on a
        # shared machine drifts over all of them alike rather than over one.
        # Each level also runs as many new prompts of the same shape with max_tokens 1: its
        # wall time is the prompt work, and what is left of the level's time is decoding.
        first = 0
        reuse = _prompt_totals(model)
        one_token = GenerationParams(max_tokens=1, temperature=0.0)
        for round_no in range(1, args.rounds + 1):
            for n in levels:
                tally = await _level(model, n, first, max(n, 2), params)
                prefills[n].add(await _level(model, n, first + max(n, 2), max(n, 2), one_token))
                first += 2 * max(n, 2)
                totals[n].add(tally)
                print(f"round {round_no}: {n:>3} in flight {tally.line()}")
        computed, reused = (a - b for a, b in zip(_prompt_totals(model), reuse, strict=True))
        if computed + reused:
            print(
                f"prompt tokens: {computed} computed, {reused} reused from a shared prefix "
                f"(the chat template's) = {reused / (computed + reused):.0%}"
            )
    for n, tally in totals.items():
        print(f"{n:>3} in flight, all rounds: {tally.line()}")
    if 1 in totals and max(levels) != 1:
        top, one = totals[max(levels)], totals[1]
        wall_ratio = (top.tokens / top.wall_s) / (one.tokens / one.wall_s)
        cpu_ratio = (top.tokens / top.cpu_s) / (one.tokens / one.cpu_s)
        print(
            f"ratio {max(levels)} vs 1: {wall_ratio:.2f}x tokens/s (target >= 2.0x), "
            f"{cpu_ratio:.2f}x tokens per CPU-s; load average now {os.getloadavg()[0]:.1f}"
        )
        decode = {
            n: (totals[n].tokens - prefills[n].tokens) / (totals[n].wall_s - prefills[n].wall_s)
            for n in (1, max(levels))
        }
        print(
            f"decoding alone (level time minus the same number of prompts' prefill): "
            f"1 in flight {decode[1]:.1f} tokens/s, {max(levels)} in flight "
            f"{decode[max(levels)]:.1f} tokens/s = {decode[max(levels)] / decode[1]:.2f}x; "
            f"prefill took {prefills[max(levels)].wall_s / top.wall_s:.0%} of the "
            f"{max(levels)}-in-flight time and {prefills[1].wall_s / one.wall_s:.0%} of the single"
        )
        name = args.model.removeprefix("builtin/")
        path = str(zoo.gguf_path(name) if name in zoo.ZOO else args.model.split("/", 1)[1])
        per_token, head = matmul_sizes(path)
        macs = prefill * (per_token - head)
        bound = macs / per_token
        print(
            f"ceiling: prefill of {prompt_tokens} tokens ran at {prefill:.1f} tokens/s = "
            f"{macs / 1e9:.1f} G multiply-adds/s; a decoded token needs {per_token / 1e6:.0f} M "
            f"(output layer {head / 1e6:.0f} M), so no batch decodes faster than {bound:.1f} "
            f"tokens/s = {bound / (one.tokens / one.wall_s):.2f}x the single-sequence rate"
        )


if __name__ == "__main__":
    asyncio.run(main())
