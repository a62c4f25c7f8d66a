"""A red attack the target answered, what it did with it, and its stored form.

The ``rN/attacks`` step stores every candidate of a round as JSON; a resumed run reads them
back from there instead of regenerating them, so the JSON shape is part of the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sparring.dart.directions import Cell
from sparring.dart.evaluation import compliance
from sparring.dart.red import RedRequest
from sparring.types import AttemptResult, Behavior, Label

Answer = tuple[str, float | None, str, float | None]
"""(answer text, p_unsafe as a probability or None when unscored, verdict label,
helpfulness: the judge's compliance probability, ``evaluation.compliance``, or None when
unscored or stored before answers carried it)."""


@dataclass
class Candidate:
    """A red attack the target answered, with what the target did with it."""

    key: str
    behavior_id: str
    cell: Cell
    text: str
    request: dict[str, Any]
    """The red request that produced it, as ``request_json`` stores it."""
    unsafe: int = 0
    """Target samples judged unsafe."""
    scored: int = 0
    """Target samples the judge could score (unscorable and failed ones excluded)."""
    answers: list[Answer] = field(default_factory=list)
    """One per judged target sample."""
    novel: bool = True
    """It passed the global-diversity test (always, unless ``target_sees`` is ``all``); only
    novel successes join the archive and train the red model."""


def judged_answers(result: AttemptResult) -> list[Answer]:
    """The judged answer of one attempt, or none when it failed or has no verdict."""
    if result.error is not None or not result.verdicts:
        return []
    verdict = result.verdicts[0]
    text = result.completions[-1].text
    return [(text, verdict.p_unsafe, str(verdict.label), compliance(verdict))]


def tally(candidate: Candidate, result: AttemptResult) -> None:
    """Add one target sample's verdict to the candidate's counts."""
    for answer in judged_answers(result):
        candidate.answers.append(answer)
        if answer[2] != Label.UNSCORABLE:
            candidate.scored += 1
            candidate.unsafe += int(answer[2] == Label.UNSAFE)


def request_json(req: RedRequest) -> dict[str, Any]:
    """A red request as stored in a candidate (the behavior by id)."""
    return {
        "behavior_id": req.behavior.id,
        "cell": list(req.cell),
        "previous_attack": req.previous_attack,
        "target_response": req.target_response,
    }


def request_from_json(data: Mapping[str, Any], behaviors: Mapping[str, Behavior]) -> RedRequest:
    """The red request ``request_json`` stored, with its behavior looked up by id."""
    return RedRequest(
        behaviors[data["behavior_id"]],
        (data["cell"][0], data["cell"][1]),
        data["previous_attack"],
        data["target_response"],
    )


def candidate_json(c: Candidate) -> dict[str, Any]:
    """A candidate as stored in the ``rN/attacks`` step."""
    return {
        "key": c.key,
        "behavior_id": c.behavior_id,
        "cell": list(c.cell),
        "text": c.text,
        "request": c.request,
        "unsafe": c.unsafe,
        "scored": c.scored,
        "answers": [list(a) for a in c.answers],
        "novel": c.novel,
    }


def candidate_from_json(c: Mapping[str, Any]) -> Candidate:
    """The candidate ``candidate_json`` stored."""
    return Candidate(
        key=c["key"],
        behavior_id=c["behavior_id"],
        cell=(c["cell"][0], c["cell"][1]),
        text=c["text"],
        request=c["request"],
        unsafe=c["unsafe"],
        scored=c["scored"],
        answers=[(a[0], a[1], a[2], a[3] if len(a) > 3 else None) for a in c["answers"]],
        novel=c.get("novel", True),
    )
