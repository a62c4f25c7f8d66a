"""Scoring requests with a judge, and thresholds calibrated on benign prompts.

sparring's judges read a *reply* against an intent. A filter that screens a *request*
gives the judge the request as both the intent and the text under review: the judge then
says how far that text carries harmful content. A response judge was not trained for
this (the embedded judge, for one, leaves "is this intent harmful" to the behavior's
label), so its p_unsafe is compared with a threshold calibrated on benign requests
rather than read as a label.

Calibration: the threshold is the ``quantile`` of the scores of the packaged benign
requests (``CALIBRATION_SUITE``), so that about ``1 - quantile`` of such requests would be
blocked. They are written for sparring and are not the over-refusal sets ``sparring
defend`` measures on by default (XSTest, JBB-benign), so the false refusal it reports is
measured out of sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from pydantic import Field

from sparring.data import suite
from sparring.defenses.base import Guard
from sparring.defenses.kit import GuardKit
from sparring.judges import Judge, JudgeInput
from sparring.types import Behavior, Frozen, Label, Message, Verdict

CALIBRATION_SUITE = "builtin-benign"
"""The benign requests thresholds are calibrated on (packaged with sparring)."""

_REVIEW = "Here is a text to review."


@dataclass(frozen=True)
class Threshold:
    """A score above which a filter blocks, and where it came from."""

    value: float
    """The score (probability for a judge's p_unsafe) above which a text is blocked."""
    source: str
    """How it was set, for the report: ``set by the user`` or the calibration."""


def threshold_record(threshold: Threshold | None) -> dict[str, Any] | None:
    """A threshold as a guard's calibration record; None without one."""
    if threshold is None:
        return None
    return {"threshold": threshold.value, "source": threshold.source}


def request_item(text: str) -> JudgeInput:
    """A request as a judge item: the request is the intent and the text under review."""
    behavior = Behavior(id="guard-request", text=text, category="other", source="guard")
    transcript = (Message(role="user", content=_REVIEW), Message(role="assistant", content=text))
    return JudgeInput(behavior=behavior, transcript=transcript)


def reply_item(request: str, conversation: Sequence[Message], reply: str) -> JudgeInput:
    """A reply as a judge item: ``request`` is taken as the intent (the guard cannot know
    whether it is benign, so it is judged as if it were not)."""
    behavior = Behavior(id="guard-reply", text=request, category="other", source="guard")
    transcript = (*conversation, Message(role="assistant", content=reply))
    return JudgeInput(behavior=behavior, transcript=transcript)


def flagged(verdict: Verdict, threshold: Threshold | None) -> bool | None:
    """True when ``verdict`` says block: p_unsafe above the threshold, or without one the
    label ``unsafe``. None when the judge could not score the text."""
    if verdict.label is Label.UNSCORABLE:
        return None
    if threshold is not None and verdict.p_unsafe is not None:
        return verdict.p_unsafe > threshold.value
    return verdict.label is Label.UNSAFE


def reading(verdict: Verdict) -> str:
    """A verdict as a short line for the guard's log: label and p_unsafe."""
    p = "n/a" if verdict.p_unsafe is None else f"{verdict.p_unsafe:.3f}"
    return f"{verdict.label} p_unsafe={p}"


async def request_threshold(
    kit: GuardKit, judge_spec: str, value: float | None, quantile: float | None
) -> Threshold | None:
    """The threshold of a request filter: ``value`` when given, else the ``quantile`` of
    ``judge_spec``'s scores on the calibration requests (computed once per kit), else None
    (the judge's label decides)."""
    if value is not None:
        return Threshold(value, "set by the user")
    if quantile is None:
        return None

    async def calibrate() -> Threshold:
        judge = await kit.judge(judge_spec)
        texts = [b.text for b in suite(CALIBRATION_SUITE)]
        verdicts = await judge.judge([request_item(t) for t in texts])
        return quantile_threshold(
            [v.p_unsafe for v in verdicts if v.p_unsafe is not None], quantile, judge.id
        )

    return await kit.shared(f"threshold:{judge_spec}:{quantile}", calibrate)


def quantile_threshold(scores: Sequence[float], quantile: float, scorer: str) -> Threshold:
    """The ``quantile`` of ``scores`` (from the calibration requests) as a Threshold."""
    if not scores:
        return Threshold(1.0, f"{scorer} scored none of the {CALIBRATION_SUITE} requests")
    value = float(np.quantile(np.asarray(scores, dtype=np.float64), quantile))
    return Threshold(
        value,
        f"{quantile:.0%} quantile of {scorer} on {len(scores)} {CALIBRATION_SUITE} requests",
    )


async def judge_requests(judge: Judge, texts: Sequence[str]) -> list[Verdict]:
    """The judge's verdicts on ``texts`` read as requests, in one batch."""
    return await judge.judge([request_item(t) for t in texts])


class ClassifierOptions(Frozen):
    """Which judge scores requests and where the line is."""

    judge: str = Field("embedded", description="Judge spec that scores the request.")
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Block above this p_unsafe; None: calibrate it."
    )
    benign_quantile: float | None = Field(
        0.95,
        gt=0.0,
        le=1.0,
        description="Without a threshold: the quantile of benign requests' scores to block "
        "above (about 1 - it of benign requests are blocked); None uses the judge's label.",
    )


ClassifierOptionsT = TypeVar("ClassifierOptionsT", bound=ClassifierOptions)


class RequestFilter(Guard[ClassifierOptionsT]):
    """A guard that screens requests with a judge against a threshold calibrated on benign
    requests (input-classifier, erase-and-check): loads both before the first request."""

    judge: Judge
    threshold: Threshold | None

    async def prepare(self) -> None:
        """Load the judge and calibrate the threshold."""
        options = self.options
        self.judge = await self.kit.judge(options.judge)
        self.threshold = await request_threshold(
            self.kit, options.judge, options.threshold, options.benign_quantile
        )

    def calibration(self) -> dict[str, Any] | None:
        """The threshold p_unsafe is compared with, and how it was set."""
        return threshold_record(self.threshold)
