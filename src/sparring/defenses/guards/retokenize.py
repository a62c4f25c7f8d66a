"""Retokenization: words of the request are broken into pieces at random, so that the model
reads it through tokens other than the ones an attack was optimised for (after Jain et al.,
2023, "Baseline defenses for adversarial attacks against aligned language models", which
applies BPE-dropout). A ChatModel takes text, not tokens, so the split is made in the text:
each word of ``min_chars`` letters or more is broken, with probability ``rate``, at a
random inner point, and its pieces are joined by a space."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from pydantic import Field

from sparring.defenses.base import Exchange, Guard, Next, last_user, with_last_user
from sparring.defenses.registry import register
from sparring.types import Completion, Frozen, Message

_WORD = re.compile(r"\w+")


class RetokenizeOptions(Frozen):
    """How often and which words are broken."""

    rate: float = Field(0.2, gt=0.0, le=1.0, description="Chance each long word is broken.")
    min_chars: int = Field(4, ge=2, description="Shortest word that may be broken, characters.")
    seed: int = Field(0, description="Fixes the splits, with the request.")


@register
class Retokenize(Guard[RetokenizeOptions]):
    """The request with random words split in two."""

    name = "retokenize"
    kind = "transform"
    description = "splits random words so the model sees other tokens (Jain et al. 2023)"
    cost = "0 extra calls"
    Options = RetokenizeOptions

    async def answer(self, conversation: Sequence[Message], call: Next, ex: Exchange) -> Completion:
        """The conversation with its last user message split, sent on."""
        rng = ex.rng(self.name, self.options.seed)
        text = conversation[last_user(conversation)].content
        return await call(with_last_user(conversation, self.split(text, rng)))

    def split(self, text: str, rng: random.Random) -> str:
        """``text`` with some words broken in two."""

        def piece(match: re.Match[str]) -> str:
            word = match[0]
            if len(word) < self.options.min_chars or rng.random() >= self.options.rate:
                return word
            cut = rng.randrange(1, len(word))
            return f"{word[:cut]} {word[cut:]}"

        return _WORD.sub(piece, text)
