"""The baseline: the behavior's request sent as it is.

Every attack success rate is read against this one. A technique only matters where it
raises success above the plain request; HarmBench (Mazeika et al., 2024) reports its
"DirectRequest" baseline for the same reason.
"""

from __future__ import annotations

from sparring.attacks.base import (
    Attack,
    AttackContext,
    AttackPrompt,
    register,
    request_text,
    single_turn,
)
from sparring.registry import NoOptions
from sparring.types import Behavior


@register
class DirectRequest(Attack[NoOptions]):
    """The request, unchanged, as one user message."""

    name = "direct"
    family = "baseline"
    description = "The request as is, the baseline every technique is compared with."

    async def realize(self, behavior: Behavior, ctx: AttackContext) -> list[AttackPrompt]:
        """One prompt: the request text (with its context document) as the user turn."""
        return [single_turn(request_text(behavior))]
