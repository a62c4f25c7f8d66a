"""SmoothLLM: the request is sent as several randomly perturbed copies, and the answer
follows the majority (Robey et al., 2023, "SmoothLLM: Defending large language models
against jailbreaking attacks"). Optimised adversarial text breaks under character-level
noise far more easily than a plain request does.

Each copy has ``rate`` of the characters of the last user message perturbed: swapped for
random printable characters (``swap``), with random characters inserted after them
(``insert``), or a contiguous patch of them replaced (``patch``). Each reply is read by
the refusal rules; when most copies were answered (not refused) the request counts as
jailbroken and an answered reply is returned, otherwise a refusing one. The
perturbations are fixed by the request and ``seed``.
"""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from sparring.defenses.base import Exchange, Guard, Next, last_user, with_last_user
from sparring.defenses.registry import register
from sparring.judges.rules import read_response
from sparring.types import Completion, Frozen, Message

_ALPHABET = string.printable.strip() + " "


class SmoothLLMOptions(Frozen):
    """How many copies and how much noise."""

    copies: int = Field(5, ge=1, le=64, description="Perturbed copies sent (N); odd avoids ties.")
    rate: float = Field(0.1, gt=0.0, le=1.0, description="Share of characters perturbed (q).")
    perturbation: Literal["swap", "insert", "patch"] = Field("swap", description="How.")
    seed: int = Field(0, description="Fixes the perturbations, with the request.")


@register
class SmoothLLM(Guard[SmoothLLMOptions]):
    """N perturbed copies of the request; the majority of their replies decides."""

    name = "smoothllm"
    kind = "transform"
    description = "majority vote over N character-perturbed copies (Robey et al. 2023)"
    cost = "N-1 extra target calls (N = copies)"
    Options = SmoothLLMOptions

    async def answer(self, conversation: Sequence[Message], call: Next, ex: Exchange) -> Completion:
        """A reply of the majority class among the copies' replies."""
        rng = ex.rng(self.name, self.options.seed)
        text = conversation[last_user(conversation)].content
        copies = [self.perturb(text, rng) for _ in range(self.options.copies)]
        replies = await asyncio.gather(*(call(with_last_user(conversation, c)) for c in copies))
        answered = [r for r in replies if r.ok]
        if not answered:
            return replies[0]
        jailbroken = [not read_response(r.text).refused for r in answered]
        verdict = sum(jailbroken) * 2 > len(answered)
        ex.note(self.name, complied=sum(jailbroken), replies=len(answered), jailbroken=verdict)
        return rng.choice([r for r, j in zip(answered, jailbroken, strict=True) if j == verdict])

    def perturb(self, text: str, rng: random.Random) -> str:
        """``text`` with ``rate`` of its characters perturbed."""
        if not text:
            return text
        count = max(1, int(len(text) * self.options.rate))
        if self.options.perturbation == "patch":
            start = rng.randrange(0, len(text) - count + 1)
            patch = "".join(rng.choice(_ALPHABET) for _ in range(count))
            return text[:start] + patch + text[start + count :]
        chars = list(text)
        for i in sorted(rng.sample(range(len(text)), count), reverse=True):
            if self.options.perturbation == "swap":
                chars[i] = rng.choice(_ALPHABET)
            else:
                chars.insert(i + 1, rng.choice(_ALPHABET))
        return "".join(chars)
