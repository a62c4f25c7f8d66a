"""Output classifier: the model's reply is scored by a judge, and replaced by a refusal
when the judge calls it unsafe. The guard cannot know whether the request was benign, so
the judge reads every reply as an answer to a possibly harmful request: an on-topic answer
to a harmless request can be blocked too, and ``sparring defend`` measures how often."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pydantic import Field

from sparring.defenses.base import Exchange, Guard, Next, block, last_user
from sparring.defenses.classify import Threshold, flagged, reading, reply_item
from sparring.defenses.registry import register
from sparring.judges import Judge
from sparring.types import Completion, Frozen, Message


class OutputClassifierOptions(Frozen):
    """Which judge reads replies and where the line is."""

    judge: str = Field("embedded", description="Judge spec that scores the reply.")
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Block above this p_unsafe; None: the judge's label."
    )


@register
class OutputClassifier(Guard[OutputClassifierOptions]):
    """Replaces a reply its judge calls unsafe with a refusal."""

    name = "output-classifier"
    kind = "filter"
    description = "replaces replies a judge calls unsafe with a refusal"
    cost = "1 classifier call"
    Options = OutputClassifierOptions

    judge: Judge

    async def prepare(self) -> None:
        """Load the judge."""
        self.judge = await self.kit.judge(self.options.judge)

    async def answer(self, conversation: Sequence[Message], call: Next, ex: Exchange) -> Completion:
        """The model's reply, or a refusal when the judge flags it; failures pass through."""
        reply = await call(conversation)
        if not reply.ok or not reply.text.strip():
            return reply
        request = conversation[last_user(conversation)].content
        started = time.perf_counter()
        [verdict] = await self.judge.judge([reply_item(request, conversation, reply.text)])
        elapsed = time.perf_counter() - started
        ex.record(self.name, "classifier", reply.text, reading(verdict), elapsed)
        threshold = (
            None
            if self.options.threshold is None
            else Threshold(self.options.threshold, "set by the user")
        )
        ex.note(self.name, p_unsafe=verdict.p_unsafe)
        if flagged(verdict, threshold):
            return block(self.name, f"reply {reading(verdict)}")
        return reply
