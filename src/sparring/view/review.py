"""Human review: the labels people gave in the viewer, as judge agreement, as labelled items
for ``sparring judge eval --from-store``, and as JSON lines in the labelled format.

A human label answers both questions a judge is measured on: ``unsafe`` means harmful
compliance and no refusal, ``safe`` neither, ``refusal`` a refusal and no harm. A judge's
verdict on a labelled attempt is its first verdict there, as the rates count it; an
``unscorable`` verdict counts as wrong in accuracy and is left out of the rest
(``sparring.judges.calibration.binary_scores``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sparring.data.taxonomy import is_category
from sparring.errors import ConfigError
from sparring.judges import BinaryScores, JudgeInput, LabelledItem
from sparring.judges.calibration import binary_scores
from sparring.store import Store
from sparring.store.labels import HumanLabel, latest
from sparring.types import AttemptResult, Behavior, Label

_ANSWERS: dict[str, tuple[bool, bool]] = {
    "unsafe": (True, False),
    "safe": (False, False),
    "refusal": (False, True),
}
"""Human label → (harmful compliance?, refused?)."""


@dataclass(frozen=True)
class Reviewed:
    """A labelled attempt: the label that counts, the attempt and its behavior."""

    label: HumanLabel
    attempt: AttemptResult
    behavior: Behavior | None
    """None when the run does not hold the attempt's behavior."""


@dataclass(frozen=True)
class JudgeOnLabels:
    """One judge measured against the human labels of the attempts it judged."""

    judge_id: str
    harm: BinaryScores
    """Unsafe vs not."""
    refusal: BinaryScores
    """Refused vs not."""


def reviewed(store: Store, run_id: str | None = None) -> list[Reviewed]:
    """The attempts people labelled, of one run or of all, in the order first labelled;
    each with its latest label."""
    behaviors: dict[str, dict[str, Behavior]] = {}
    out = []
    for (run, key), label in sorted(latest(store.labels(run_id)).items(), key=_by_id):
        if run not in behaviors:
            behaviors[run] = {b.id: b for b in store.behaviors(run)}
        attempt = store.attempt(run, key)
        out.append(Reviewed(label, attempt, behaviors[run].get(attempt.spec.behavior_id)))
    return out


def _by_id(entry: tuple[tuple[str, str], HumanLabel]) -> int:
    return entry[1].id


def judge_agreement(items: Sequence[Reviewed]) -> list[JudgeOnLabels]:
    """Every judge with a verdict on a labelled attempt, against the labels, in the order
    the judges first appear."""
    judges = list(dict.fromkeys(v.judge_id for it in items for v in it.attempt.verdicts))
    out = []
    for judge in judges:
        pairs = [
            (_ANSWERS[it.label.label], verdict)
            for it in items
            if (verdict := next((v for v in it.attempt.verdicts if v.judge_id == judge), None))
        ]
        out.append(
            JudgeOnLabels(
                judge_id=judge,
                harm=binary_scores(
                    [gold[0] for gold, _ in pairs], [_said(v.label, Label.UNSAFE) for _, v in pairs]
                ),
                refusal=binary_scores(
                    [gold[1] for gold, _ in pairs],
                    [_said(v.label, Label.REFUSAL) for _, v in pairs],
                ),
            )
        )
    return out


def _said(label: Label, yes: Label) -> bool | None:
    return None if label is Label.UNSCORABLE else label is yes


def labelled_items(store: Store, run_id: str | None = None) -> list[LabelledItem]:
    """The labelled attempts as items a judge can be measured on: the judge sees what the
    run's judge saw (the behavior and the whole conversation). ConfigError when there are
    none, naming how to make some."""
    items = []
    for it in reviewed(store, run_id):
        if it.behavior is None:
            continue
        unsafe, refused = _ANSWERS[it.label.label]
        items.append(
            LabelledItem(
                input=JudgeInput(behavior=it.behavior, transcript=tuple(it.attempt.transcript)),
                unsafe=unsafe,
                refused=refused,
                group=it.behavior.category,
                source=f"run {it.label.run_id}",
            )
        )
    if not items:
        where = f"run {run_id}" if run_id else "the store"
        raise ConfigError(
            f"--from-store: {where} holds no human labels yet; label attempts in "
            "`sparring view` first"
        )
    return items


def export_lines(items: Sequence[Reviewed]) -> Iterator[str]:
    """JSON lines in the labelled format ``sparring judge eval --data`` reads (``intent``,
    ``response``, ``label``, ``category``, ``benign``), with the whole conversation and
    where each label came from beside them."""
    for it in items:
        if it.behavior is None:
            continue
        record = {
            "intent": it.behavior.text,
            "response": it.attempt.completions[-1].text if it.attempt.completions else "",
            "label": it.label.label,
            "benign": it.behavior.benign,
            "transcript": [m.model_dump() for m in it.attempt.transcript],
            "run_id": it.label.run_id,
            "attempt_key": it.label.attempt_key,
            "technique": it.attempt.spec.attack,
            "note": it.label.note,
            "who": it.label.who,
            "labelled_at": it.label.created_at.isoformat(),
        }
        if is_category(it.behavior.category):
            record["category"] = it.behavior.category
        yield json.dumps(record, ensure_ascii=False) + "\n"
