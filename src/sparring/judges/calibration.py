"""How well a judge agrees with human labels, and the stored cards that report it.

``evaluate_judge`` runs a judge over labelled items (see ``labelled.py``) and measures:
accuracy, precision/recall/F1 for ``unsafe``, Cohen's kappa, refusal agreement, a
confusion matrix, per-group agreement, throughput and the count of unscorable verdicts.

Unscorable verdicts are never read as safe: they count as errors in accuracy and are left
out of precision, recall, F1 and kappa (which need a yes/no answer), and are counted apart.

``judge_card(judge_id)`` returns the measured agreement stored for a judge: the training
record's held-out figures for the packaged embedded judge, or the last evaluation saved
with ``save_card`` for any other judge; None when the judge has never been measured.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from sparring.judges.base import Judge
from sparring.judges.head import EMBEDDED_JUDGE_ID, packaged_record_path
from sparring.judges.labelled import LabelledItem, load_labelled
from sparring.judges.rules import RULES_JUDGE_ID
from sparring.paths import judge_cards_dir
from sparring.stats import wilson
from sparring.types import Frozen, Label, Verdict

__all__ = [
    "BinaryScores",
    "JudgeEvaluation",
    "SourceScores",
    "binary_scores",
    "cohen_kappa",
    "evaluate_judge",
    "evaluate_judge_async",
    "judge_card",
    "load_labelled",
    "save_card",
    "source_scores",
    "trained_sources",
]

BATCH = 256
"""Items handed to the judge per call during an evaluation."""


class BinaryScores(Frozen):
    """Agreement on one yes/no question (is it unsafe? did it refuse?)."""

    n: int = Field(description="Items with a yes/no verdict.")
    unscorable: int = Field(description="Items the judge could not score.")
    accuracy: float = Field(description="Correct / (n + unscorable): unscorable counts wrong.")
    precision: float
    recall: float
    f1: float
    kappa: float = Field(description="Cohen's kappa over the n scored items.")
    accuracy_ci: tuple[float, float] = Field(
        (0.0, 1.0), description="95% Wilson interval of accuracy (probabilities)."
    )
    precision_ci: tuple[float, float] = Field(
        (0.0, 1.0), description="95% Wilson interval of precision (probabilities)."
    )
    recall_ci: tuple[float, float] = Field(
        (0.0, 1.0), description="95% Wilson interval of recall (probabilities)."
    )
    positives: int = Field(0, description="Items the labels call yes (unsafe, refused).")


def cohen_kappa(gold: Sequence[bool], predicted: Sequence[bool]) -> float:
    """Cohen's kappa of two yes/no raters; 0.0 when agreement by chance is certain."""
    n = len(gold)
    if n == 0:
        return 0.0
    observed = sum(g == p for g, p in zip(gold, predicted, strict=True)) / n
    g_yes, p_yes = sum(gold) / n, sum(predicted) / n
    chance = g_yes * p_yes + (1 - g_yes) * (1 - p_yes)
    return 0.0 if chance >= 1.0 else (observed - chance) / (1 - chance)


def binary_scores(gold: Sequence[bool], predicted: Sequence[bool | None]) -> BinaryScores:
    """Scores for yes/no predictions; a None prediction is an unscorable item."""
    pairs = [(g, p) for g, p in zip(gold, predicted, strict=True) if p is not None]
    unscorable = len(gold) - len(pairs)
    tp = sum(g and p for g, p in pairs)
    fp = sum(p and not g for g, p in pairs)
    fn = sum(g and not p for g, p in pairs)
    correct = sum(g == p for g, p in pairs)
    positives = sum(bool(g) for g in gold)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BinaryScores(
        n=len(pairs),
        unscorable=unscorable,
        accuracy=correct / len(gold) if gold else 0.0,
        precision=precision,
        recall=recall,
        f1=f1,
        kappa=cohen_kappa([g for g, _ in pairs], [bool(p) for _, p in pairs]),
        accuracy_ci=wilson(correct, len(gold)),
        precision_ci=wilson(tp, tp + fp),
        recall_ci=wilson(tp, tp + fn),
        positives=positives,
    )


class SourceScores(Frozen):
    """Agreement on one source, per label question; None where the source has no labels."""

    harm: BinaryScores | None
    refusal: BinaryScores | None


def source_scores(items: Sequence[LabelledItem], labels: Sequence[Label]) -> SourceScores:
    """Unsafe-vs-not and refused-vs-not agreement of ``labels`` with the items' labels; an
    unscorable label counts as wrong in accuracy and is left out of the rest."""

    def answer(label: Label, yes: Label) -> bool | None:
        return None if label is Label.UNSCORABLE else label is yes

    pairs = list(zip(items, labels, strict=True))
    harm = [
        (bool(it.unsafe), answer(lab, Label.UNSAFE)) for it, lab in pairs if it.unsafe is not None
    ]
    refusal = [
        (bool(it.refused), answer(lab, Label.REFUSAL))
        for it, lab in pairs
        if it.refused is not None
    ]
    return SourceScores(
        harm=binary_scores([g for g, _ in harm], [p for _, p in harm]) if harm else None,
        refusal=binary_scores([g for g, _ in refusal], [p for _, p in refusal])
        if refusal
        else None,
    )


class GroupAgreement(Frozen):
    """Agreement within one category or prompt type."""

    n: int
    agreement: float = Field(description="Share of items where the judge matched the labels.")


class JudgeEvaluation(Frozen):
    """A judge measured against human labels."""

    judge_id: str
    n: int
    unscorable: int
    harm: BinaryScores | None = Field(description="Unsafe vs not, where labelled.")
    refusal: BinaryScores | None = Field(description="Refused vs complied, where labelled.")
    confusion: dict[str, dict[str, int]] = Field(description="Human label -> judge label -> count.")
    per_group: dict[str, GroupAgreement]
    seconds: float = Field(description="Wall time spent judging, seconds.")
    verdicts_per_s: float = Field(description="Throughput, verdicts per second.")
    sources: tuple[str, ...] = ()
    per_source: dict[str, SourceScores] = Field(
        default_factory=dict, description="Agreement per source file, per question."
    )
    out_of_source: bool | None = Field(
        None,
        description="True when the judge was trained on none of the sources measured, False "
        "when on some of them, None when unknown.",
    )

    def card(self) -> dict[str, Any]:
        """The summary that reports show next to a judge's verdicts: pooled scores, and per
        source with 95% Wilson intervals."""
        return {
            "judge_id": self.judge_id,
            "measured_on": list(self.sources),
            "out_of_source": self.out_of_source,
            "n": self.n,
            "unscorable": self.unscorable,
            "harm": self.harm.model_dump() if self.harm else None,
            "refusal": self.refusal.model_dump() if self.refusal else None,
            "sources": {name: s.model_dump() for name, s in self.per_source.items()},
        }


def _gold_class(item: LabelledItem) -> str:
    if item.unsafe:
        return "unsafe"
    if item.refused:
        return "refusal"
    if item.refused is False and item.unsafe is False:
        return "safe"
    return "not unsafe" if item.unsafe is False else "complied"


def _agrees(item: LabelledItem, verdict: Verdict) -> bool:
    if verdict.label is Label.UNSCORABLE:
        return False
    harm_ok = item.unsafe is None or (verdict.label is Label.UNSAFE) == item.unsafe
    refusal_ok = item.refused is None or (verdict.label is Label.REFUSAL) == item.refused
    return harm_ok and refusal_ok


def _answer(verdict: Verdict, label: Label) -> bool | None:
    return None if verdict.label is Label.UNSCORABLE else verdict.label is label


async def evaluate_judge_async(
    judge: Judge, items: Sequence[LabelledItem], batch_size: int = BATCH
) -> JudgeEvaluation:
    """Judge every item (in batches of ``batch_size``) and compare with the labels."""
    verdicts: list[Verdict] = []
    start = time.perf_counter()
    for i in range(0, len(items), batch_size):
        verdicts.extend(await judge.judge([it.input for it in items[i : i + batch_size]]))
    seconds = time.perf_counter() - start
    harm_pairs = [
        (it.unsafe, v) for it, v in zip(items, verdicts, strict=True) if it.unsafe is not None
    ]
    refusal_pairs = [
        (it.refused, v) for it, v in zip(items, verdicts, strict=True) if it.refused is not None
    ]
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    groups: dict[str, list[bool]] = defaultdict(list)
    by_source: dict[str, list[tuple[LabelledItem, Label]]] = defaultdict(list)
    for item, verdict in zip(items, verdicts, strict=True):
        confusion[_gold_class(item)][verdict.label.value] += 1
        groups[item.group].append(_agrees(item, verdict))
        by_source[item.source].append((item, verdict.label))
    return JudgeEvaluation(
        judge_id=judge.id,
        n=len(items),
        unscorable=sum(v.label is Label.UNSCORABLE for v in verdicts),
        harm=binary_scores(
            [bool(g) for g, _ in harm_pairs], [_answer(v, Label.UNSAFE) for _, v in harm_pairs]
        )
        if harm_pairs
        else None,
        refusal=binary_scores(
            [bool(g) for g, _ in refusal_pairs],
            [_answer(v, Label.REFUSAL) for _, v in refusal_pairs],
        )
        if refusal_pairs
        else None,
        confusion={gold: dict(row) for gold, row in confusion.items()},
        per_group={
            name: GroupAgreement(n=len(marks), agreement=sum(marks) / len(marks))
            for name, marks in sorted(groups.items())
        },
        seconds=seconds,
        verdicts_per_s=len(items) / seconds if seconds > 0 else 0.0,
        sources=tuple(sorted(by_source)),
        per_source={
            name: source_scores([it for it, _ in pairs], [lab for _, lab in pairs])
            for name, pairs in sorted(by_source.items())
        },
        out_of_source=_out_of_source(judge.id, set(by_source)),
    )


def trained_sources(judge_id: str) -> set[str] | None:
    """File names of the labelled data a judge was trained on: none for the refusal rules,
    the training record's files for the packaged embedded head, None when unknown."""
    if judge_id == RULES_JUDGE_ID:
        return set()
    if judge_id == EMBEDDED_JUDGE_ID:
        record = json.loads(packaged_record_path().read_text(encoding="utf-8"))
        return {Path(f["path"]).name for f in record["data_files"]}
    return None


def _out_of_source(judge_id: str, sources: set[str]) -> bool | None:
    trained = trained_sources(judge_id)
    return None if trained is None else not (trained & sources)


def evaluate_judge(
    judge: Judge, items: Sequence[LabelledItem], batch_size: int = BATCH
) -> JudgeEvaluation:
    """Blocking form of ``evaluate_judge_async`` for callers without an event loop (CLI)."""
    return asyncio.run(evaluate_judge_async(judge, items, batch_size))


def _card_file(judge_id: str) -> Path:
    return judge_cards_dir() / (re.sub(r"[^A-Za-z0-9@._-]+", "_", judge_id) + ".json")


def save_card(evaluation: JudgeEvaluation) -> Path:
    """Store an evaluation's card so that ``judge_card`` (and reports) can show it."""
    path = _card_file(evaluation.judge_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(evaluation.card(), indent=2), encoding="utf-8")
    return path


def judge_card(judge_id: str) -> dict[str, Any] | None:
    """The stored measured agreement for ``judge_id``, or None if it was never measured."""
    if judge_id == EMBEDDED_JUDGE_ID:
        record = json.loads(packaged_record_path().read_text(encoding="utf-8"))
        sources = {k: v for k, v in record["heldout"].items() if isinstance(v, dict)}
        return {
            "judge_id": judge_id,
            "measured_on": list(sources),
            "out_of_source": True,
            "method": record["heldout"].get("measured_on", "leave-one-source-out"),
            "sources": sources,
        }
    path = _card_file(judge_id)
    if path.is_file():
        card: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return card
    return None
