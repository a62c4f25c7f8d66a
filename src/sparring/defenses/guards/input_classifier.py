"""Input classifier: the request is scored by a judge before the model sees it, and blocked
when the score is above a threshold calibrated on benign requests (see
``sparring.defenses.classify``): a Llama-Guard-style prompt filter built from sparring's
own judges."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from sparring.defenses.base import Exchange, Guard, Next, block, last_user
from sparring.defenses.classify import (
    Threshold,
    flagged,
    judge_requests,
    reading,
    request_threshold,
    threshold_record,
)
from sparring.defenses.registry import register
from sparring.judges import Judge
from sparring.types import Completion, Frozen, Message


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


@register
class InputClassifier(Guard[ClassifierOptions]):
    """Blocks a request its judge scores above the threshold."""

    name = "input-classifier"
    kind = "filter"
    description = "blocks requests a judge scores as harmful (threshold calibrated on benign)"
    cost = "1 classifier call"
    Options = ClassifierOptions

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

    async def answer(self, conversation: Sequence[Message], call: Next, ex: Exchange) -> Completion:
        """A refusal when the last user message is flagged; the model's answer otherwise."""
        text = conversation[last_user(conversation)].content
        started = time.perf_counter()
        [verdict] = await judge_requests(self.judge, [text])
        ex.record(self.name, "classifier", text, reading(verdict), time.perf_counter() - started)
        decision = flagged(verdict, self.threshold)
        ex.note(self.name, p_unsafe=verdict.p_unsafe)
        if decision:
            return block(self.name, f"request {reading(verdict)} {_above(self.threshold)}")
        return await call(conversation)


def _above(threshold: Threshold | None) -> str:
    """How the decision was made, for the block's reason."""
    return "(judge label)" if threshold is None else f"> {threshold.value:.3f}"
