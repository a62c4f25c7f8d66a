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

from sparring.dart.candidate import Answer
from sparring.judges.rules import read_response
from sparring.types import Label


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


def best_safe_answer(
    answers: Sequence[Answer],
    safe_threshold: float,
    helpful_threshold: float,
    refusals_only: bool = False,
) -> str | None:
    """The answer to train on for a harmful prompt, from judged samples (text, p_unsafe,
    label, helpfulness); helpfulness is the judge's compliance probability, 1 − P(refused)
    (``evaluation.compliance``), None counting as 0.

    An answer qualifies when the judge calls it safe or a refusal with safety 1 − p_unsafe
    above ``safe_threshold``, and it is helpful above ``helpful_threshold`` or is a refusal:
    every selected prompt drew an unsafe answer, so declining is the behaviour to teach. The
    safest qualifying answer wins, the more helpful on a tie.

    With ``refusals_only`` an answer must instead read as a refusal to the refusal rules
    (whatever the judge's label), and the most helpful one wins: among refusals, the one
    the judge finds least like a flat refusal (one that says why, or offers something
    safe) beats a bare one. A compliant reply the judge passed as safe is never trained on.
    In a mini run on Qwen2.5-0.5B, 54 of 108 context-distilled answers were such replies
    and 7 were refusals, and training on them raised the violation rate.
    Returns None when none qualifies (an unscored answer, p_unsafe None, never does).
    """

    def qualifies(text: str, label: str, helpful: float) -> bool:
        if refusals_only:
            return read_response(text).refused
        return label == Label.REFUSAL or helpful > helpful_threshold

    good = [
        (text, 1.0 - p_unsafe, helpful or 0.0)
        for text, p_unsafe, label, helpful in answers
        if p_unsafe is not None
        and label in (Label.SAFE, Label.REFUSAL)
        and 1.0 - p_unsafe > safe_threshold
        and qualifies(text, label, helpful or 0.0)
    ]
    if not good:
        return None
    if refusals_only:
        return max(good, key=lambda a: (a[2], a[1]))[0]
    return max(good, key=lambda a: (a[1], a[2]))[0]
