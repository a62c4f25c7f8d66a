"""Erase-and-check: the request is blocked when it, or the request with up to ``max_erase``
of its last words erased, is flagged by the request classifier (Kumar et al., 2023,
"Certifying LLM safety against adversarial prompting", suffix mode). An adversarial suffix
of at most ``max_erase`` words cannot hide a harmful request the classifier flags on its
own: some erasure removes exactly the suffix. The classifier is the input classifier's
(a judge with a threshold calibrated on benign requests), all erasures scored in one
batch; erasing more words than the request has checks it down to its first word."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pydantic import Field

from sparring.defenses.base import Exchange, Next, block, last_user
from sparring.defenses.classify import (
    ClassifierOptions,
    RequestFilter,
    flagged,
    judge_requests,
    reading,
)
from sparring.defenses.registry import register
from sparring.types import Completion, Message


class EraseCheckOptions(ClassifierOptions):
    """The input classifier's judge and threshold, and how much may be erased."""

    max_erase: int = Field(20, ge=1, le=200, description="Most trailing words erased (d).")


@register
class EraseCheck(RequestFilter[EraseCheckOptions]):
    """Blocks a request when any suffix erasure of it is flagged."""

    name = "erase-and-check"
    kind = "filter"
    description = (
        "blocks when the request or one with its last words erased is flagged (Kumar et al. 2023)"
    )
    cost = "up to max_erase+1 classifier calls (one batch)"
    Options = EraseCheckOptions

    async def answer(self, conversation: Sequence[Message], call: Next, ex: Exchange) -> Completion:
        """A refusal when any erasure is flagged; the model's answer otherwise."""
        text = conversation[last_user(conversation)].content
        candidates = erasures(text, self.options.max_erase)
        started = time.perf_counter()
        verdicts = await judge_requests(self.judge, candidates)
        each = (time.perf_counter() - started) / len(candidates)
        hit = None
        for erased, verdict in zip(candidates, verdicts, strict=True):
            ex.record(self.name, "classifier", erased, reading(verdict), each)
            if hit is None and flagged(verdict, self.threshold):
                hit = (len(text.split()) - len(erased.split()), verdict)
        ex.note(self.name, checked=len(candidates), erased_when_flagged=hit and hit[0])
        if hit is not None:
            return block(self.name, f"{hit[0]} words erased: {reading(hit[1])}")
        return await call(conversation)


def erasures(text: str, max_erase: int) -> list[str]:
    """``text`` and ``text`` with its last 1..max_erase words erased (keeping at least one
    word), distinct, longest first."""
    words = text.split()
    keep = range(len(words), max(0, len(words) - max_erase - 1), -1)
    out = [text, *(" ".join(words[:n]) for n in keep if 0 < n < len(words))]
    return list(dict.fromkeys(out))
