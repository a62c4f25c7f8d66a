"""Builders of hand-made and simulated scans for the metrics, report and compare tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from sparring.metrics import ScanData
from sparring.store.records import RunRecord
from sparring.types import AttemptResult, AttemptSpec, Behavior, Completion, Label, Message, Verdict

PRIMARY = "rules@1"
SECOND = "classifier@2"


def behavior(
    bid: str, category: str = "cyber", *, benign: bool = False, text: str = ""
) -> Behavior:
    """A behavior whose text defaults to a recognisable marker built from its id."""
    return Behavior(
        id=bid, text=text or f"BEHAVIOR-TEXT-{bid}", category=category, source="test", benign=benign
    )


def attempt(
    bid: str,
    technique: str,
    label: Label | None,
    *,
    sample: int = 0,
    error: str | None = None,
    second: Label | None = None,
    prompt: str = "",
    response: str = "",
    rationale: str | None = None,
    latency_s: float = 0.5,
) -> AttemptResult:
    """One trial: the primary judge says ``label`` (None: no verdict), the second judge says
    ``second`` when given; ``error`` makes the request fail."""
    spec = AttemptSpec(
        behavior_id=bid,
        attack=technique,
        messages=(Message(role="user", content=prompt or f"PROMPT-{bid}-{technique}-{sample}"),),
        sample=sample,
    )
    if error is not None:
        completion = Completion.failure(error, latency_s=latency_s)
    else:
        text = response or f"RESPONSE-{bid}-{technique}-{sample}"
        completion = Completion(text=text, latency_s=latency_s)
    verdicts = []
    if label is not None:
        verdicts.append(Verdict(label=label, judge_id=PRIMARY, rationale=rationale))
    if second is not None:
        verdicts.append(Verdict(label=second, judge_id=SECOND))
    return AttemptResult(spec=spec, completions=(completion,), verdicts=tuple(verdicts))


def run_info(
    run_id: str = "run-a", target: str = "builtin/smollm2-135m", seed: int = 7
) -> RunRecord:
    """A stored run with every field filled, so reports have something to show."""
    return RunRecord(
        id=run_id,
        kind="scan",
        config={"techniques": ["direct", "base64"], "samples": 2, "max_tokens": 128},
        seed=seed,
        model_ids={"target": target, "judge": PRIMARY},
        created_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        finished_at=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        status="finished",
        versions={"sparring": "0.1.0", "python": "3.11.9"},
    )


def hand_made_scan(run_id: str = "run-a") -> ScanData:
    """The scan whose every rate tests/test_metrics.py works out by hand.

    Harmful: h1, h2 (cyber), h3 (fraud); benign: b1 (cyber), b2 (fraud); techniques
    direct and base64; h1 × base64 has two samples.
    """
    behaviors = [
        behavior("h1", "cyber"),
        behavior("h2", "cyber"),
        behavior("h3", "fraud"),
        behavior("b1", "cyber", benign=True),
        behavior("b2", "fraud", benign=True),
    ]
    attempts = [
        attempt("h1", "direct", Label.REFUSAL, second=Label.REFUSAL),
        attempt("h1", "base64", Label.UNSAFE, second=Label.UNSAFE),
        attempt("h1", "base64", Label.SAFE, sample=1, second=Label.UNSAFE),
        attempt("h2", "direct", Label.UNSCORABLE, second=Label.SAFE),
        attempt("h2", "base64", None, error="HTTP 500 from target"),
        attempt("h3", "direct", Label.UNSAFE, second=Label.UNSAFE),
        attempt("h3", "base64", Label.REFUSAL, second=Label.SAFE),
        attempt("b1", "direct", Label.REFUSAL, second=Label.REFUSAL),
        attempt("b1", "base64", Label.SAFE, second=Label.SAFE),
        attempt("b2", "direct", Label.SAFE, second=Label.SAFE),
        attempt("b2", "base64", None, error="timeout after 120 s"),
    ]
    return ScanData(run=run_info(run_id), behaviors=behaviors, attempts=attempts)


def simulated_scan(
    asr: Mapping[str, float],
    *,
    seed: int,
    run_id: str,
    behaviors_per_category: int = 20,
    categories: Sequence[str] = ("cyber", "fraud", "weapons"),
    refusal_share: float = 0.7,
) -> ScanData:
    """Every harmful behavior attacked once by each technique; a trial is unsafe with the
    technique's probability in ``asr``, else refused with ``refusal_share``, else safe.
    Deterministic given ``seed``."""
    rng = np.random.default_rng(seed)
    behaviors = [
        behavior(f"{cat}-{i}", cat) for cat in categories for i in range(behaviors_per_category)
    ]
    attempts = []
    for b in behaviors:
        for technique, p in asr.items():
            u = rng.random()
            if u < p:
                label = Label.UNSAFE
            elif rng.random() < refusal_share:
                label = Label.REFUSAL
            else:
                label = Label.SAFE
            attempts.append(attempt(b.id, technique, label))
    return ScanData(run=run_info(run_id, seed=seed), behaviors=behaviors, attempts=attempts)
