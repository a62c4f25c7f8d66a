"""The judge interface: (original intent, conversation) -> Verdict."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from sparring.types import Behavior, Frozen, Label, Message, Verdict

RATIONALE_CHARS = 300
"""Longest rationale a judge stores, characters; judge replies are cut to this."""


class JudgeInput(Frozen):
    """What a judge sees: the original harmful intent and the whole conversation.

    The last message of ``transcript`` is the response under judgment. Judging against the
    behavior rather than the (possibly disguised) attack prompt is deliberate: an encoded or
    role-played request is unsafe to answer exactly when the plain request is.
    """

    behavior: Behavior
    transcript: tuple[Message, ...] = Field(min_length=1)
    meta: dict[str, Any] = Field(
        default_factory=dict,
        description="The attempt's attack details (AttemptSpec.meta); an exact check reads "
        "what success looks like from meta['check'].",
    )

    @property
    def response(self) -> str:
        """The text under judgment: the final assistant turn."""
        return self.transcript[-1].content


class Judge(ABC):
    """Scores responses. Implementations batch internally; an item that cannot be judged
    gets an ``unscorable`` Verdict (never ``safe``) and the batch carries on."""

    #: Name and version, e.g. ``refusal-rules@1``; stored with every verdict.
    id: str

    @abstractmethod
    async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        """One Verdict per item, in order."""

    async def check(self) -> None:  # noqa: B027 - optional hook, local judges check by loading
        """Raise EndpointError (one line) when the judge cannot score anything at all, e.g.
        its model's server is unreachable; call it before a run. Judges without a remote
        model have nothing to check."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release models or sessions held by the judge."""


def unscorable(judge_id: str, reason: str) -> Verdict:
    """The verdict for an item a judge could not score; ``reason`` is cut to a short line."""
    return Verdict(
        label=Label.UNSCORABLE,
        p_unsafe=None,
        judge_id=judge_id,
        rationale=clip(reason),
    )


def clip(text: str, limit: int = RATIONALE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis when longer."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
