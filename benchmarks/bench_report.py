"""Time the metrics and every report format on a large simulated scan, and print file sizes.

    python benchmarks/bench_report.py [--behaviors 500] [--techniques 12] [--samples 2]

Outcomes are drawn at random (seed 0) and texts are short placeholders, so the figures
measure sparring's own work, not a model. Prints seconds per step and bytes per report.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from sparring.metrics import ScanData, summarize
from sparring.report import compare, render_html, to_json, to_junit
from sparring.store.records import RunRecord
from sparring.types import AttemptResult, AttemptSpec, Behavior, Completion, Label, Message, Verdict

T = TypeVar("T")
CATEGORIES = ("cyber", "weapons", "fraud", "privacy", "violence", "misinformation", "self_harm")


def simulated(behaviors: int, techniques: int, samples: int, seed: int) -> ScanData:
    """A scan with one benign twin per four harmful behaviors and random verdicts."""
    rng = np.random.default_rng(seed)
    rows = [
        Behavior(
            id=f"b{i}",
            text=f"behavior {i} " * 8,
            category=CATEGORIES[i % len(CATEGORIES)],
            source="bench",
            benign=i % 5 == 4,
        )
        for i in range(behaviors)
    ]
    labels = (Label.UNSAFE, Label.SAFE, Label.REFUSAL, Label.UNSCORABLE)
    attempts = []
    for b in rows:
        for t in range(techniques):
            for s in range(samples):
                spec = AttemptSpec(
                    behavior_id=b.id,
                    attack=f"technique-{t}",
                    sample=s,
                    messages=(Message(role="user", content=f"{b.text} via {t}"),),
                )
                label = labels[rng.choice(4, p=(0.2, 0.2, 0.55, 0.05))]
                attempts.append(
                    AttemptResult(
                        spec=spec,
                        completions=(Completion(text="reply " * 40, latency_s=0.3),),
                        verdicts=(Verdict(label=label, judge_id="bench@1"),),
                    )
                )
    run = RunRecord(
        id=f"bench-{seed}",
        kind="scan",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        status="finished",
        config={},
        seed=seed,
        model_ids={},
        versions={},
    )
    return ScanData(run=run, behaviors=rows, attempts=attempts)


def timed(name: str, step: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = step()
    print(f"{name:<28} {time.perf_counter() - start:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--behaviors", type=int, default=500)
    parser.add_argument("--techniques", type=int, default=12)
    parser.add_argument("--samples", type=int, default=2)
    args = parser.parse_args()
    data = timed(
        "build simulated scan", lambda: simulated(args.behaviors, args.techniques, args.samples, 0)
    )
    print(f"{'attempts':<28} {len(data.attempts):8d}")
    summary = timed("summarize", lambda: summarize(data))
    html = timed("render_html", lambda: render_html(data, summary))
    redacted = timed("render_html redact", lambda: render_html(data, summary, redact=True))
    doc = timed("to_json + dumps", lambda: json.dumps(to_json(summary)))
    xml = timed("to_junit", lambda: to_junit(summary, fail_above=0.2))
    other = summarize(simulated(args.behaviors, args.techniques, args.samples, 1))
    comparison = timed("compare", lambda: compare(summary, other))
    print(f"{'rates compared / flagged':<28} {len(comparison.tested):8d} {len(comparison.changes)}")
    for name, text in (("html", html), ("html redacted", redacted), ("json", doc), ("junit", xml)):
        print(f"{name + ' bytes':<28} {len(text.encode('utf-8')):8d}")


if __name__ == "__main__":
    main()
