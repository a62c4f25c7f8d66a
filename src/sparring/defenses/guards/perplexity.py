"""Perplexity filter: a request whose text is too unlikely under a small language model is
blocked, which catches optimised gibberish (GCG-style suffixes) and lets fluent attacks
through (Jain et al., 2023, "Baseline defenses for adversarial attacks against aligned
language models"; Alon and Kamfonas, 2023, "Detecting language model attacks with
perplexity").

The score is the mean negative log-likelihood (log-perplexity, nats per token) of the last
user message under ``model`` (SmolLM2-135M from the packaged zoo by default), or with
``window`` set, the highest mean over that many consecutive tokens (windowed perplexity,
which a short suffix cannot dilute in a long request). The threshold is ``threshold`` when
set, else the ``benign_quantile`` of the scores of the packaged benign requests
(``sparring.defenses.classify.CALIBRATION_SUITE``), stated in the run's record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from sparring.data import suite
from sparring.defenses.base import Exchange, Guard, Next, block, last_user
from sparring.defenses.classify import CALIBRATION_SUITE, Threshold, threshold_record
from sparring.defenses.perplexity_lm import TokenScorer, windowed_max
from sparring.defenses.registry import register
from sparring.models import zoo
from sparring.types import Completion, Frozen, Message


class PerplexityOptions(Frozen):
    """The scoring model, the window and the threshold."""

    model: str = Field("smollm2-135m", description="Zoo model (builtin/NAME) that scores.")
    window: int | None = Field(
        None, ge=2, description="Tokens per window for windowed perplexity; None: whole text."
    )
    threshold: float | None = Field(
        None, gt=0.0, description="Block above this NLL (nats/token); None: calibrate it."
    )
    benign_quantile: float = Field(
        0.99, gt=0.0, le=1.0, description="Calibration quantile of benign requests' scores."
    )


@register
class Perplexity(Guard[PerplexityOptions]):
    """Blocks requests whose (windowed) perplexity is above the threshold."""

    name = "perplexity"
    kind = "filter"
    description = "blocks high-perplexity requests under a small LM (Jain et al. 2023)"
    cost = "1 scorer call (a 135M LM reads the request)"
    Options = PerplexityOptions

    scorer: TokenScorer
    threshold: Threshold

    async def prepare(self) -> None:
        """Load the scoring model and calibrate the threshold (once per kit)."""
        options = self.options

        async def load() -> TokenScorer:
            return TokenScorer(zoo.gguf_path(options.model))

        self.scorer = await self.kit.shared(f"scorer:{options.model}", load)
        if options.threshold is not None:
            self.threshold = Threshold(options.threshold, "set by the user")
            return

        async def calibrate() -> Threshold:
            texts = [b.text for b in suite(CALIBRATION_SUITE)]
            scores = [await self.measure(text) for text in texts]
            value = float(np.quantile(scores, options.benign_quantile))
            where = f"{options.benign_quantile:.0%} quantile of {options.model}"
            return Threshold(value, f"{where} on {len(texts)} {CALIBRATION_SUITE} requests")

        key = f"perplexity:{options.model}:{options.window}:{options.benign_quantile}"
        self.threshold = await self.kit.shared(key, calibrate)

    def calibration(self) -> dict[str, Any] | None:
        """The NLL threshold (nats per token) and how it was set."""
        return threshold_record(self.threshold)

    async def measure(self, text: str) -> float:
        """The text's score: mean (or windowed maximum) NLL, nats per token."""
        nll = await self.scorer.score(text)
        if self.options.window is not None:
            return windowed_max(nll, self.options.window)
        return float(nll.mean()) if nll.size else 0.0

    async def answer(self, conversation: Sequence[Message], call: Next, ex: Exchange) -> Completion:
        """A refusal when the last user message scores above the threshold."""
        text = conversation[last_user(conversation)].content
        started = time.perf_counter()
        score = await self.measure(text)
        reading = f"nll {score:.3f} nats/token"
        ex.record(self.name, "classifier", text, reading, time.perf_counter() - started)
        ex.note(self.name, nll=round(score, 4), threshold=round(self.threshold.value, 4))
        if score > self.threshold.value:
            return block(self.name, f"{reading} > {self.threshold.value:.3f}")
        return await call(conversation)
