"""How much the engine (scheduling, judging, store writes) costs on top of the model.

Drives Engine + target_executor + OpenAICompatibleModel + RunStore against the loopback
chat server running in a separate process, and prints:

(a) with 100 ms of server latency and 64 attempts in flight: requests per second and the
    share of the ideal 640/s (target: at least 90 %);
(b) with no server latency: attempts per second and the engine process's CPU time per
    attempt, store writes included (target: at least 500 attempts/s).

Each figure comes with the same requests sent by the bare HTTP client (no engine, judge or
store) on the same server, and the machine's load average: on a shared machine the ratio
to the bare client is the engine's own cost, the absolute rate also measures the neighbours.

    python benchmarks/engine_overhead.py [--seconds 10] [--attempts 5000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from sparring.engine import Engine, RunOutcome, target_executor
from sparring.judges.base import Judge, JudgeInput
from sparring.models.openai_http import OpenAICompatibleModel
from sparring.store import RunStore
from sparring.testing.processes import server_process
from sparring.types import AttemptSpec, Behavior, GenerationParams, Label, Message, Verdict


class KeywordJudge(Judge):
    """A judge that costs next to nothing, so the figures are the engine's own."""

    id = "keyword@bench"

    async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        return [
            Verdict(
                label=Label.REFUSAL if "sorry" in item.response else Label.SAFE,
                p_unsafe=0.0,
                judge_id=self.id,
            )
            for item in items
        ]


def loopback_server(latency_ms: float) -> AbstractContextManager[str]:
    """The loopback server in its own process; yields its base URL."""
    command = [sys.executable, "-m", "sparring.testing.openai_server", "--port", "0"]
    return server_process([*command, "--latency-ms", str(latency_ms)])


def plan(attempts: int) -> tuple[dict[str, Behavior], list[AttemptSpec]]:
    behaviors = {
        f"b{n}": Behavior(id=f"b{n}", text=f"behavior {n}", category="bench", source="bench")
        for n in range(50)
    }
    specs = [
        AttemptSpec(
            behavior_id=f"b{n % 50}",
            attack="direct",
            messages=(Message(role="user", content=f"benchmark prompt number {n}"),),
            params=GenerationParams(max_tokens=64),
        )
        for n in range(attempts)
    ]
    return behaviors, specs


def http_model(base_url: str, concurrency: int) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(
        "bench",
        model_id="openai-compatible/bench",
        base_url=base_url,
        api_key=None,
        max_concurrency=concurrency,
        max_retries=0,
    )


async def drive(base_url: str, attempts: int, concurrency: int, store_path: Path) -> RunOutcome:
    behaviors, specs = plan(attempts)
    with RunStore(store_path) as store:
        run_id = store.create_run("bench", {"attempts": attempts}, 0, {"target": "bench"})
        store.add_behaviors(run_id, behaviors.values())
        async with http_model(base_url, concurrency) as target:
            execute = target_executor(target, [KeywordJudge()], behaviors, store=store)
            engine = Engine(store, run_id, concurrency=concurrency, progress=False)
            outcome = await engine.run(specs, execute)
    if outcome.errors:
        raise SystemExit(f"{outcome.errors} attempts failed; the figures would be meaningless")
    return outcome


async def bare_client(base_url: str, requests: int, concurrency: int) -> None:
    """The same requests straight through the HTTP client, ``concurrency`` at a time."""
    _, specs = plan(requests)
    slots = asyncio.Semaphore(concurrency)
    async with http_model(base_url, concurrency) as target:

        async def one(spec: AttemptSpec) -> None:
            async with slots:
                await target.generate([spec.messages], spec.params)

        await asyncio.gather(*(one(spec) for spec in specs))


def measure(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of this process spent in ``run()``."""
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    run()
    return time.perf_counter() - wall_start, time.process_time() - cpu_start


def latency_bound(seconds: float, concurrency: int, folder: Path) -> None:
    ideal = concurrency / 0.1
    attempts = int(ideal * seconds)
    with loopback_server(100) as url:
        wall_s, cpu_s = measure(
            lambda: asyncio.run(drive(url, attempts, concurrency, folder / "a.sqlite"))
        )
        bare_s, _ = measure(lambda: asyncio.run(bare_client(url, attempts, concurrency)))
    rate = attempts / wall_s
    print(
        f"(a) 100 ms latency, {concurrency} in flight: {attempts} requests in {wall_s:.2f} s "
        f"= {rate:.0f} requests/s, {100 * rate / ideal:.1f} % of the ideal {ideal:.0f}/s "
        f"(target >= 90 %); engine CPU {1000 * cpu_s / attempts:.2f} ms per attempt; "
        f"bare client {attempts / bare_s:.0f} requests/s"
    )


def overhead(attempts: int, concurrency: int, folder: Path, profile: bool) -> None:
    profiler = cProfile.Profile() if profile else None
    with loopback_server(0) as url:
        if profiler is not None:
            profiler.enable()
        wall_s, cpu_s = measure(
            lambda: asyncio.run(drive(url, attempts, concurrency, folder / "b.sqlite"))
        )
        if profiler is not None:
            profiler.disable()
        bare_s, bare_cpu_s = measure(lambda: asyncio.run(bare_client(url, attempts, concurrency)))
    print(
        f"(b) no latency, {concurrency} in flight: {attempts} attempts in {wall_s:.2f} s "
        f"= {attempts / wall_s:.0f} attempts/s (target >= 500); engine process CPU "
        f"{1000 * cpu_s / attempts:.2f} ms per attempt; bare client {attempts / bare_s:.0f} "
        f"requests/s at {1000 * bare_cpu_s / attempts:.2f} ms CPU per request"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of (a), seconds")
    parser.add_argument("--attempts", type=int, default=5000, help="attempts in (b)")
    parser.add_argument("--concurrency", type=int, default=64, help="attempts in flight")
    parser.add_argument("--profile", action="store_true", help="cProfile (b), print top 40")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (1, 5, 15 min) before the run")
    with tempfile.TemporaryDirectory() as folder:
        latency_bound(args.seconds, args.concurrency, Path(folder))
        overhead(args.attempts, args.concurrency, Path(folder), args.profile)


if __name__ == "__main__":
    main()
