"""Active learning on the target side: which prompts the target is fine-tuned on.

For each red-team prompt the target answers K times and the judge marks each answer. The
prompts whose outcome the target is least sure of (it is unsafe on some samples and safe on
others) carry the most information per training example, so DART spends its budget there:
uncertainty is the binary entropy of the unsafe rate, highest at a 50/50 split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def binary_entropy(p: float) -> float:
    """Entropy of a Bernoulli(p) in bits: 0 at p ∈ {0, 1}, 1 at p = 0.5."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


@dataclass(frozen=True)
class PromptOutcome:
    """How the target fared on one prompt over its K samples."""

    key: str
    unsafe: int
    scored: int

    @property
    def unsafe_rate(self) -> float:
        """Share of scored samples judged unsafe (0 when none were scored)."""
        return self.unsafe / self.scored if self.scored else 0.0

    @property
    def uncertainty(self) -> float:
        """Binary entropy of the unsafe rate, bits."""
        return binary_entropy(self.unsafe_rate)


def select_uncertain(
    outcomes: Sequence[PromptOutcome], budget: int, include_always_unsafe: bool = True
) -> list[PromptOutcome]:
    """The ``budget`` most uncertain prompts; leftover budget goes to always-unsafe ones.

    Prompts with no unsafe sample teach nothing about safety and are never picked; ties
    break by key so the choice is reproducible.
    """
    if budget <= 0:
        return []
    uncertain = sorted(
        (o for o in outcomes if 0 < o.unsafe < o.scored),
        key=lambda o: (-o.uncertainty, o.key),
    )
    chosen = uncertain[:budget]
    if include_always_unsafe and len(chosen) < budget:
        always = sorted(
            (o for o in outcomes if o.scored and o.unsafe == o.scored), key=lambda o: o.key
        )
        chosen += always[: budget - len(chosen)]
    return chosen


def select_all_unsafe(outcomes: Sequence[PromptOutcome]) -> list[PromptOutcome]:
    """MART's selection: every prompt with at least one unsafe answer."""
    return sorted((o for o in outcomes if o.unsafe > 0), key=lambda o: o.key)
