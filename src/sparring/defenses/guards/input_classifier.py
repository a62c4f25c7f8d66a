"""Input classifier: the request is scored by a judge before the model sees it, and blocked
when the score is above a threshold calibrated on benign requests (see
``sparring.defenses.classify``): a Llama-Guard-style prompt filter built from sparring's
own judges."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sparring.defenses.base import Exchange, Next, block, last_user
from sparring.defenses.classify import (
    ClassifierOptions,
    RequestFilter,
    Threshold,
    flagged,
    judge_requests,
    reading,
)
from sparring.defenses.registry import register
from sparring.types import Completion, Message


@register
class InputClassifier(RequestFilter[ClassifierOptions]):
    """Blocks a request its judge scores above the threshold."""

    name = "input-classifier"
    kind = "filter"
    description = "blocks requests a judge scores as harmful (threshold calibrated on benign)"
    cost = "1 classifier call"
    Options = ClassifierOptions

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
