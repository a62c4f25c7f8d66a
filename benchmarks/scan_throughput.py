"""End-to-end scan throughput with the default judge, and the default judge's own speed.

Prints, on one machine and in one run (so the ratios hold even when neighbours load it):

(1) verdicts/s of the default judge (``embedded``) on the distinct GPTFuzz evaluate replies
    of at most 200 MiniLM tokens, embedding cache emptied before each pass (best of
    three): the whole set in one call, and one reply per call; target at least 640/s;
(2) attempts/s of full scans (``run_scan``) against the loopback chat server in its own
    process, answering every request after 100 ms with those same replies (in turn), at
    64 attempts in flight (at least 4,096 attempts, a multiple of 64: see ``behaviors_for``):
    with a judge that costs nothing (the engine alone), with the default judge, and
    (``--before``) with the default judge awaited by each attempt as before the judging
    stage; each beside the ideal 640/s
    (target: the default-judge scan at least 90 % of it), as a ratio to the engine alone,
    and with this process's CPU per attempt (every thread; the server's process apart).

    python benchmarks/scan_throughput.py [--attempts 4096] [--concurrency 64] [--before]

The server replays real replies so the judge reads text of realistic length; replies repeat
after the set is used up (905 replies) with the pass number appended, so every reply is
distinct and the judge encodes each one: no embedding cache hit flatters the judge.

The scan is long (66 waves of 100 ms) because a scan has one-off costs that are not its
rate: opening 64 connections in the first wave, and judging the last batch after the last
reply (about 0.1 s together, 5 % of a 1,152-attempt scan and 1.5 % of this one). Pass
``--attempts 1024`` to see them weigh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sparring.data.locations import data_dir
from sparring.engine import Engine, target_executor
from sparring.judges import EmbeddedJudge, Judge, JudgeInput
from sparring.judges.labelled import load_labelled
from sparring.judges.registry import JudgeBuild, judge_form
from sparring.models import resolve_model
from sparring.scan import make_config, run_scan
from sparring.scan.config import ScanConfig
from sparring.scan.plan import build_plan, scan_attacks
from sparring.store import RunStore
from sparring.testing import ChatRequest, OpenAIServer
from sparring.testing.processes import server_process
from sparring.types import AttemptResult, AttemptSpec, Behavior, Label, Verdict

MAX_REPLY_TOKENS = 200
"""Longest reply the judge speed is measured on, MiniLM tokens."""

LATENCY_MS = 100.0
"""The server's delay before each reply, milliseconds."""


class NullJudge(Judge):
    """A judge that costs next to nothing, so a scan with it measures the engine alone."""

    id = "null@bench"

    async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        return [Verdict(label=Label.SAFE, p_unsafe=0.0, judge_id=self.id) for _ in items]


@judge_form("null-bench", separator=None)
def build_null(argument: str | None, build: JudgeBuild) -> Judge:
    """``null-bench``: the benchmark's judge that costs nothing."""
    return NullJudge()


def typical_replies(judge: EmbeddedJudge) -> list[JudgeInput]:
    """Distinct GPTFuzz evaluate replies of at most ``MAX_REPLY_TOKENS`` tokens."""
    items = load_labelled(data_dir() / "gptfuzz" / "responses_labeled_evaluate.csv")
    distinct = list({i.input.response: i.input for i in items if i.input.response.strip()}.values())
    counts = judge.encoder.count_tokens([item.response for item in distinct])
    return [item for item, n in zip(distinct, counts, strict=True) if n <= MAX_REPLY_TOKENS]


def judge_speed(judge: EmbeddedJudge, inputs: list[JudgeInput], batch: int) -> float:
    """Verdicts per second in calls of ``batch`` items, cold embedding cache, best of 3."""
    best = 0.0
    for _ in range(3):
        judge.encoder.clear_cache()
        start = time.perf_counter()
        for at in range(0, len(inputs), batch):
            judge.score(inputs[at : at + batch])
        best = max(best, len(inputs) / (time.perf_counter() - start))
    return best


def serve(replies_file: Path, latency_ms: float) -> None:
    """Serve the replies in ``replies_file`` (a JSON list) in turn until terminated."""
    replies: list[str] = json.loads(replies_file.read_text())

    def reply(request: ChatRequest) -> str:
        rounds, at = divmod(request.index, len(replies))
        return replies[at] if rounds == 0 else f"{replies[at]} ({rounds})"

    server = OpenAIServer(latency_ms=latency_ms, responder=reply)

    async def run() -> None:
        async with server:
            print(server.base_url, flush=True)
            await asyncio.Event().wait()

    asyncio.run(run())


def replaying_server(
    replies: list[str], latency_ms: float, folder: Path
) -> AbstractContextManager[str]:
    """The replaying server in its own process; yields its base URL."""
    replies_file = folder / "replies.json"
    replies_file.write_text(json.dumps(replies))
    command = [sys.executable, __file__, "--serve", str(replies_file)]
    return server_process([*command, "--latency-ms", str(latency_ms)])


def behaviors_for(attempts: int, attacks: int, concurrency: int) -> list[Behavior]:
    """Harmful behaviors (GPTFuzz questions, repeated with a number) for at least
    ``attempts`` attempts of ``attacks`` techniques each, as few as make the attempt count a
    multiple of ``concurrency``.

    With every reply taking the same latency L, N attempts at C in flight need
    ceil(N / C) waves, so the ideal C / L attempts/s holds only when C divides N: 1,026
    attempts at 64 in flight need 17 waves, and could reach at most 94 % of it.
    """
    questions = (data_dir() / "gptfuzz" / "question_list.csv").read_text().splitlines()[1:]
    texts = [line.partition(",")[2].strip('"') for line in questions if line.strip()]
    step = concurrency // math.gcd(concurrency, attacks)
    count = -(-attempts // attacks // step) * step
    return [
        Behavior(
            id=f"q{n}",
            text=texts[n % len(texts)] + (f" (case {n // len(texts)})" if n >= len(texts) else ""),
            category="bench",
            source="bench",
        )
        for n in range(count)
    ]


def scan_config(base_url: str, judge: str, concurrency: int) -> ScanConfig:
    """The scan of the benchmark: default techniques, every behavior, one sample."""
    return make_config(
        {
            "target": "openai-compatible/bench",
            "target_options": {"base_url": base_url, "max_retries": 0},
            "judge": judge,
            "concurrency": concurrency,
            "limit": None,
        }
    )


async def full_scan(config: ScanConfig, behaviors: list[Behavior], store: RunStore) -> float:
    """Attempts per second of the scan's target phase (every attempt must succeed)."""
    result = await run_scan(config, store, behaviors=behaviors, progress=False)
    outcome = result.outcome
    if outcome.errors or outcome.done != outcome.planned:
        raise SystemExit(f"{outcome.errors} of {outcome.planned} attempts failed; no figures")
    return outcome.done / outcome.elapsed_s


def timed(scan: Coroutine[Any, Any, float], judge: EmbeddedJudge) -> tuple[float, float]:
    """(attempts/s, this process's CPU seconds, every thread counted) of one scan, with the
    process's embedding cache emptied first (the scans replay the same replies)."""
    judge.encoder.clear_cache()
    cpu = time.process_time()
    rate = asyncio.run(scan)
    return rate, time.process_time() - cpu


async def judged_per_attempt(
    config: ScanConfig, behaviors: list[Behavior], store: RunStore
) -> float:
    """The same scan with each attempt awaiting its own judge call (before the judging
    stage): the executor is wrapped so that the engine cannot stage it."""
    plan = await build_plan(config, behaviors, scan_attacks(config))
    run_id = store.create_run("scan", {}, 0, {})
    store.add_behaviors(run_id, behaviors)
    target = resolve_model(config.target, config.target_options)
    staged = target_executor(target, [EmbeddedJudge()], {b.id: b for b in behaviors}, store=store)

    async def execute(spec: AttemptSpec) -> AttemptResult:
        return await staged(spec)

    try:
        engine = Engine(store, run_id, concurrency=config.concurrency, progress=False)
        outcome = await engine.run(plan, execute)
    finally:
        await target.aclose()
    return outcome.done / outcome.elapsed_s


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=4096, help="attempts per scan")
    parser.add_argument("--concurrency", type=int, default=64, help="attempts in flight")
    parser.add_argument("--before", action="store_true", help="also judge per attempt")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.latency_ms)
        return
    print(f"{os.cpu_count()} CPUs, load average {load()} (1, 5, 15 min) before the run")
    judge = EmbeddedJudge()
    inputs = typical_replies(judge)
    whole = judge_speed(judge, inputs, len(inputs))
    single = judge_speed(judge, inputs[:200], 1)
    print(
        f"(1) default judge ({judge.id}) on {len(inputs)} replies <= {MAX_REPLY_TOKENS} tokens, "
        f"cold cache: {whole:.0f} verdicts/s in one call ({whole / 640:.2f} x the 640/s "
        f"target), {single:.0f} verdicts/s one reply per call ({whole / single:.1f} x slower)"
    )
    ideal = args.concurrency / (LATENCY_MS / 1000)
    config_attacks = len(scan_config("http://unused/v1", "embedded", 1).attacks)
    behaviors = behaviors_for(args.attempts, config_attacks, args.concurrency)
    with tempfile.TemporaryDirectory() as folder:
        replies = [item.response for item in inputs]
        with replaying_server(replies, LATENCY_MS, Path(folder)) as url:
            rates: dict[str, tuple[float, float]] = {}
            for name, judge_spec in (("engine alone", "null-bench"), ("default judge", "embedded")):
                config = scan_config(url, judge_spec, args.concurrency)
                # A store of its own each: a shared one would answer from its completion cache.
                with RunStore(Path(folder) / f"{judge_spec}.sqlite") as store:
                    rates[name] = timed(full_scan(config, behaviors, store), judge)
            if args.before:
                config = scan_config(url, "embedded", args.concurrency)
                with RunStore(Path(folder) / "before.sqlite") as store:
                    rates["judged per attempt"] = timed(
                        judged_per_attempt(config, behaviors, store), judge
                    )
    attempts = len(behaviors) * config_attacks
    alone = rates["engine alone"][0]
    print(
        f"(2) full scans of {attempts} attempts, {args.concurrency} in flight, "
        f"{LATENCY_MS:.0f} ms server latency (ideal {ideal:.0f} attempts/s):"
    )
    for name, (rate, cpu_s) in rates.items():
        print(
            f"    {name:<20} {rate:6.0f} attempts/s = {100 * rate / ideal:5.1f} % of ideal, "
            f"{rate / alone:.2f} x the engine alone; {1000 * cpu_s / attempts:.2f} ms CPU "
            "per attempt"
        )
    target = rates["default judge"][0] >= 0.9 * ideal
    print(f"    default judge >= 90 % of ideal: {'yes' if target else 'no'}")
    print(f"load average {load()} after the run")


if __name__ == "__main__":
    main()
