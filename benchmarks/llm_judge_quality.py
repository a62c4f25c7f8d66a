"""LLM rubric judges and escalation ensembles measured against human labels, out of source.

LLM judges are not trained here, so every labelled source is out of source for them. The
sources, each scored apart: ``gptfuzz-evaluate`` (GPTFuzz's evaluate split; with
``--gptfuzz-train`` also its train split, which is where the rubric parsers were checked,
so it is not reported as held out) and ``xstest-MODEL`` (each XSTest completion file).

From each source ``--n`` items are drawn at random (``--seed``), stratified by the human
label (unsafe / refusal / other), so a small run keeps each source's mix.

An ensemble whose first judge is ``embedded`` (``escalate:embedded,JUDGE``) is scored with
an embedded head trained without the scored source (leave-one-source-out, the packaged
head's settings, ``training.SETTINGS``), so that neither member saw the source; pass
``--packaged-head`` to use the packaged head (trained on every source) instead.

Per judge, source and question (``unsafe?``: harmful compliance; ``refused?``): n, labelled
yes, accuracy with its 95% Wilson interval, Cohen's kappa, precision and recall of yes
with Wilson intervals, the unscorable share, verdicts/s (wall clock over the whole source,
model load excluded) and, for an escalation, the share of items sent to the second judge.

Run: ``python benchmarks/llm_judge_quality.py --n 100 --judges rules
"harmbench:builtin/qwen2.5-coder-0.5b" "escalate:embedded,harmbench:builtin/qwen2.5-coder-1.5b"``
(data from ``$SPARRING_DATA_DIR``). A 1.5B rubric judge takes about 1-4 s a harmful item on two
cores; a harmful item costs one request, a benign one none (see ``judges/llm.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sparring.data.locations import data_dir
from sparring.judges import EscalationJudge, Judge, JudgeInput, resolve_judge
from sparring.judges.calibration import BinaryScores, JudgeEvaluation, evaluate_judge_async
from sparring.judges.labelled import LabelledItem, load_labelled
from sparring.judges.training import (
    LAYERS,
    MAX_TOKENS,
    SETTINGS,
    featurize_sources,
    labelled_sources,
    train_head,
)
from sparring.stats import wilson
from sparring.types import Verdict

DEFAULT_JUDGES = (
    "rules",
    "harmbench:builtin/qwen2.5-coder-0.5b",
    "harmbench:builtin/qwen2.5-coder-1.5b",
    "escalate:embedded,harmbench:builtin/qwen2.5-coder-1.5b",
)
ESCALATED_MARK = "; escalated:"
"""What an escalation verdict's rationale holds when the second judge gave it."""
TRAIN_ROWS = 3000
"""Rows drawn per file to train a leave-one-source-out embedded head (rows)."""


@dataclass(frozen=True)
class Measured:
    """One judge on one source."""

    evaluation: JudgeEvaluation
    escalated: int | None
    """Items the escalation's second judge scored; None for a judge that does not escalate."""


def labelled_files(root: Path, with_train: bool) -> dict[str, Path]:
    """The sources by name: GPTFuzz evaluate (and train), then each XSTest completion file."""
    files = {"gptfuzz-evaluate": root / "gptfuzz/responses_labeled_evaluate.csv"}
    if with_train:
        files["gptfuzz-train"] = root / "gptfuzz/responses_labeled_train.csv"
    for name, paths in labelled_sources(root).items():
        if name.startswith("xstest"):
            files[name] = paths[0]
    return files


def _stratum(item: LabelledItem) -> str:
    if item.unsafe:
        return "unsafe"
    return "refusal" if item.refused else "other"


def stratified(items: list[LabelledItem], n: int, seed: int) -> list[LabelledItem]:
    """``n`` items drawn without replacement, each label stratum in proportion (largest
    remainders get the rounding), in a seeded random order."""
    if n >= len(items):
        return list(items)
    rng = random.Random(seed)
    strata: dict[str, list[LabelledItem]] = defaultdict(list)
    for item in items:
        strata[_stratum(item)].append(item)
    shares = {k: n * len(v) / len(items) for k, v in sorted(strata.items())}
    counts = {k: int(s) for k, s in shares.items()}
    for k in sorted(shares, key=lambda k: counts[k] - shares[k])[: n - sum(counts.values())]:
        counts[k] += 1
    drawn = [it for k, v in sorted(strata.items()) for it in rng.sample(v, counts[k])]
    rng.shuffle(drawn)
    return drawn


def loso_heads(root: Path, sources: list[str], folder: Path, seed: int) -> dict[str, Path]:
    """For each reported source, an embedded head trained on every training source but
    the one it belongs to (GPTFuzz's two splits are one source); its file path."""
    splits = featurize_sources(root, limit=TRAIN_ROWS, seed=seed)
    heads = {}
    for source in sources:
        family = "gptfuzz" if source.startswith("gptfuzz") else source
        rest = [split for name, split in splits.items() if name != family]
        path = folder / f"head-{source}.npz"
        train_head(rest, SETTINGS, max_tokens=MAX_TOKENS, layers=LAYERS).save(path)
        heads[source] = path
    return heads


def _spec_for(spec: str, head: Path | None) -> str:
    """``spec`` with its ``embedded`` member pointed at ``head`` (when one is given)."""
    if head is None:
        return spec
    if spec == "embedded":
        return f"embedded@{head}"
    if spec.startswith("escalate:embedded,"):
        return spec.replace("escalate:embedded,", f"escalate:embedded@{head},", 1)
    return spec


def _uses_embedded(spec: str) -> bool:
    return spec == "embedded" or spec.startswith("escalate:embedded,")


class Counting(Judge):
    """Passes every batch to ``inner`` and counts the verdicts an escalation's second judge
    gave (their rationale says so)."""

    def __init__(self, inner: Judge) -> None:
        self.inner, self.id, self.escalated = inner, inner.id, 0

    async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        """The inner judge's verdicts."""
        verdicts = await self.inner.judge(items)
        self.escalated += sum(ESCALATED_MARK in (v.rationale or "") for v in verdicts)
        return verdicts


async def measure(judge: Judge, items: list[LabelledItem]) -> Measured:
    """Score ``items`` in one batch (the judge batches internally) against their labels."""
    counting = Counting(judge)
    evaluation = await evaluate_judge_async(counting, items, batch_size=max(1, len(items)))
    escalates = isinstance(judge, EscalationJudge)
    return Measured(evaluation, counting.escalated if escalates else None)


async def run_spec(
    spec: str, samples: dict[str, list[LabelledItem]], heads: dict[str, Path]
) -> dict[str, Measured]:
    """One judge spec on every source; a judge with an embedded member is rebuilt per
    source with that source's held-out head, any other is built once."""
    out: dict[str, Measured] = {}
    shared: Judge | None = None
    try:
        for source, items in samples.items():
            head = heads.get(source) if _uses_embedded(spec) else None
            if head is None:
                shared = shared or resolve_judge(spec)
                out[source] = await measure(shared, items)
            else:
                judge = resolve_judge(_spec_for(spec, head))
                try:
                    out[source] = await measure(judge, items)
                finally:
                    await judge.aclose()
            print(f"  {spec} on {source}: {out[source].evaluation.seconds:.0f} s", flush=True)
    finally:
        if shared is not None:
            await shared.aclose()
    return out


def _ci(low_high: tuple[float, float]) -> str:
    return f"[{low_high[0]:.2f},{low_high[1]:.2f}]"


def _share(k: int, n: int) -> str:
    return f"{k / n:.2f} {_ci(wilson(k, n))}" if n else "-"


def _row(judge: str, source: str, question: str, s: BinaryScores, m: Measured) -> str:
    e = m.evaluation
    total = s.n + s.unscorable
    escalated = "-" if m.escalated is None else _share(m.escalated, e.n)
    return (
        f"| {judge} | {source} | {question} | {total} | {s.positives} | "
        f"{s.accuracy:.3f} {_ci(s.accuracy_ci)} | {s.kappa:.2f} | "
        f"{s.precision:.2f} {_ci(s.precision_ci)} | {s.recall:.2f} {_ci(s.recall_ci)} | "
        f"{_share(s.unscorable, total)} | {e.verdicts_per_s:.2f} | {escalated} |"
    )


def print_table(results: dict[str, dict[str, Measured]]) -> None:
    """A Markdown table: one row per judge, source and question."""
    print(
        "| judge | source | question | n | yes | accuracy [95% CI] | kappa | "
        "precision [95% CI] | recall [95% CI] | unscorable | verdicts/s | escalated |"
    )
    print("|---" * 12 + "|")
    for judge, per_source in results.items():
        for source, m in per_source.items():
            for question, s in (("unsafe?", m.evaluation.harm), ("refused?", m.evaluation.refusal)):
                if s is not None:
                    print(_row(judge, source, question, s, m))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judges", nargs="+", default=list(DEFAULT_JUDGES), help="judge specs")
    parser.add_argument("--n", type=int, default=150, help="items drawn per source")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw and the heads")
    parser.add_argument("--sources", nargs="*", default=None, help="only these sources")
    parser.add_argument(
        "--gptfuzz-train", action="store_true", help="also score GPTFuzz's train split"
    )
    parser.add_argument(
        "--packaged-head", action="store_true", help="ensembles use the packaged embedded head"
    )
    args = parser.parse_args()
    root = data_dir()
    files = labelled_files(root, args.gptfuzz_train)
    if args.sources:
        files = {k: v for k, v in files.items() if k in args.sources}
    samples = {name: stratified(load_labelled(f), args.n, args.seed) for name, f in files.items()}
    with tempfile.TemporaryDirectory() as tmp:
        heads: dict[str, Path] = {}
        if not args.packaged_head and any(_uses_embedded(s) for s in args.judges):
            heads = loso_heads(root, list(samples), Path(tmp), args.seed)
        results = {}
        for spec in args.judges:
            results[spec] = asyncio.run(run_spec(spec, samples, heads))
            print(f"done: {spec}", flush=True)
    print_table(results)


if __name__ == "__main__":
    main()
