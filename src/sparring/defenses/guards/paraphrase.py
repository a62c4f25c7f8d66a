"""Paraphrase: a helper model rewrites the request in its own words before the model sees it,
which undoes the exact wording adversarial suffixes and templates rely on (Jain et al.,
2023, "Baseline defenses for adversarial attacks against aligned language models"). The
helper is the protected model itself unless ``helper`` names another; a failed helper
call fails the request (an error, never a pass)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from sparring.defenses.base import Exchange, Guard, Next, ask_helper, last_user, with_last_user
from sparring.defenses.registry import register
from sparring.types import Completion, Frozen, Message

INSTRUCTION = (
    "Paraphrase the user's text: say the same thing in different words, keeping its meaning "
    "and any question it asks. Reply with the paraphrase only; do not answer it."
)


class ParaphraseOptions(Frozen):
    """Who paraphrases, and how long the paraphrase may be."""

    helper: str | None = Field(None, description="Model spec of the paraphraser; None: the target.")
    max_tokens: int = Field(128, ge=8, description="Longest paraphrase, tokens.")


@register
class Paraphrase(Guard[ParaphraseOptions]):
    """The request replaced by the helper's paraphrase of it."""

    name = "paraphrase"
    kind = "transform"
    description = "a helper model paraphrases the request first (Jain et al. 2023)"
    cost = "1 helper call"
    Options = ParaphraseOptions

    async def answer(self, conversation: Sequence[Message], call: Next, ex: Exchange) -> Completion:
        """The conversation with its last user message paraphrased, sent on."""
        helper = await self.kit.helper(self.options.helper)
        text = conversation[last_user(conversation)].content
        reply = await ask_helper(helper, ex, self.name, INSTRUCTION, text, self.options.max_tokens)
        if not reply.ok:
            return Completion.failure(f"paraphrase helper failed: {reply.error}")
        paraphrase = reply.text.strip() or text
        return await call(with_last_user(conversation, paraphrase))
