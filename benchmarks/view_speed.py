"""Time the viewer's pages on a store of 100,000 attempts, through its HTTP server.

    python benchmarks/view_speed.py [--attempts 100000] [--store PATH] [--repeat 3]

Builds (or reuses, with ``--store``) one scan run of ``--attempts`` attempts: 2,000
behaviors in 7 categories, each tried by ``attempts / 2000`` techniques (50), replies of
about 60 words, two judges that disagree on about one attempt in eight, a few with
``p_unsafe`` near 0.5. Then serves it with ``sparring view``'s application on a loopback
port and times each page over HTTP, seconds per request: the first request (cold) and the
median of ``--repeat`` more. The target is under a second for the runs list and every
attempts-list page, filtered or not, on 2 cores. A run's page needs the run's summary
(every attempt read, as its HTML report does): that is computed in the background, so the
page answers at once and fills in its charts when ready; the benchmark prints how long that
took, and the page once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

from sparring.store import RunStore
from sparring.store.browse import AttemptFilter
from sparring.types import AttemptResult, AttemptSpec, Behavior, Completion, Label, Message, Verdict
from sparring.view.app import make_app
from sparring.view.reader import StoreWorker

CATEGORIES = ("cyber", "weapons", "fraud", "privacy", "violence", "misinformation", "self_harm")
BEHAVIORS = 2000
RUN = "bench-run"
BATCH = 5000
WORDS = [
    "the",
    "reply",
    "goes",
    "on",
    "about",
    "tools",
    "steps",
    "and",
    "reasons",
    "for",
    "a",
    "while",
]


def build(path: Path, attempts: int, seed: int = 0) -> None:
    """One finished scan run of ``attempts`` attempts in a new store at ``path``."""
    rng = np.random.default_rng(seed)
    behaviors = [
        Behavior(
            id=f"b{i}",
            text=f"behavior {i} asks for something about topic {i % 97}",
            category=CATEGORIES[i % len(CATEGORIES)],
            source="bench",
            benign=i % 5 == 4,
        )
        for i in range(BEHAVIORS)
    ]
    techniques = max(1, attempts // BEHAVIORS)
    labels = (Label.UNSAFE, Label.SAFE, Label.REFUSAL, Label.UNSCORABLE)
    with RunStore(path) as store:
        store.create_run("scan", {}, seed, {"target": "bench", "judge": "bench@1"}, run_id=RUN)
        store.add_behaviors(RUN, behaviors)
        batch: list[AttemptResult] = []
        for n in range(attempts):
            b = behaviors[n % BEHAVIORS]
            technique = f"technique-{(n // BEHAVIORS) % techniques}"
            words = rng.choice(WORDS, size=60)
            first = labels[rng.choice(4, p=(0.2, 0.2, 0.55, 0.05))]
            second = labels[rng.choice(3)] if rng.random() < 0.125 else first
            p = float(rng.uniform(0.4, 0.6)) if rng.random() < 0.05 else None
            batch.append(
                AttemptResult(
                    spec=AttemptSpec(
                        behavior_id=b.id,
                        attack=technique,
                        sample=n // (BEHAVIORS * techniques),
                        messages=(Message(role="user", content=f"{b.text} via {technique}"),),
                    ),
                    completions=(Completion(text=" ".join(words), latency_s=0.3),),
                    verdicts=(
                        Verdict(label=first, judge_id="bench@1", p_unsafe=p),
                        Verdict(label=second, judge_id="other@1"),
                    ),
                )
            )
            if len(batch) == BATCH:
                store.record_attempts(RUN, batch)
                batch = []
        store.record_attempts(RUN, batch)
        store.finish_run(RUN, "finished")


async def timed(session: aiohttp.ClientSession, url: str, repeat: int) -> tuple[float, float]:
    """Seconds of the first request and the median of ``repeat`` more."""
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        async with session.get(url, allow_redirects=False) as answer:
            await answer.read()
            if answer.status >= 400:
                raise SystemExit(f"{url}: HTTP {answer.status}")
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


async def charts_ready(session: aiohttp.ClientSession, url: str) -> float:
    """Seconds until the run page comes with its charts (they are computed in the
    background after its first request), polling every half second."""
    start = time.perf_counter()
    while True:
        async with session.get(url) as answer:
            if "Computing the rates" not in await answer.text():
                return time.perf_counter() - start
        await asyncio.sleep(0.5)


async def measure(path: Path, repeat: int) -> None:
    worker = StoreWorker(path)
    with RunStore(path) as store:
        middle = len(store.done_keys(RUN)) // 2
        key = store.attempt_page(RUN, None, AttemptFilter(), middle, 1).rows[0].key
    runner = web.AppRunner(make_app(worker, path, "bench"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    pages = {
        "runs list": "/",
        "attempts, page 1": f"/runs/{RUN}/attempts",
        "attempts, page 1000": f"/runs/{RUN}/attempts?page=1000",
        "filter technique": f"/runs/{RUN}/attempts?technique=technique-7",
        "filter category": f"/runs/{RUN}/attempts?category=fraud",
        "filter verdict": f"/runs/{RUN}/attempts?verdict=unsafe",
        "filter disagreement": f"/runs/{RUN}/attempts?disagree=1",
        "filter text": f"/runs/{RUN}/attempts?q=topic+42+via",
        "filter all at once": (
            f"/runs/{RUN}/attempts?technique=technique-3&category=cyber&verdict=refusal"
            "&disagree=1&q=behavior"
        ),
        "attempt page": f"/runs/{RUN}/attempts/{key}",
        "review queue": f"/review?scope={RUN}",
        "run page": f"/runs/{RUN}",
    }
    print(f"{'page':<24} {'first (s)':>10} {'median (s)':>11}")
    try:
        async with aiohttp.ClientSession() as session:
            for name, url in pages.items():
                first, median = await timed(session, base + url, repeat)
                flag = "" if max(first, median) < 1.0 else "  over 1 s"
                print(f"{name:<24} {first:>10.3f} {median:>11.3f}{flag}")
            ready = await charts_ready(session, base + pages["run page"])
            print(f"run page charts ready {ready:.1f} s after the first request")
            first, median = await timed(session, base + pages["run page"], repeat)
            print(f"{'run page, charts ready':<24} {first:>10.3f} {median:>11.3f}")
    finally:
        await runner.cleanup()
        worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--store", type=Path, help="reuse this store (built there if missing)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sparring-view-bench-") as folder:
        path = args.store or Path(folder) / "runs.sqlite"
        if not path.exists():
            start = time.perf_counter()
            build(path, args.attempts)
            print(f"built {args.attempts} attempts in {time.perf_counter() - start:.1f} s: {path}")
        asyncio.run(measure(path, args.repeat))


if __name__ == "__main__":
    main()
