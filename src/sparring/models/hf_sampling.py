"""Choosing the next token of each row: greedy at temperature 0, else nucleus sampling.

Sampling runs on CPU in float32 with one generator per row, so a seeded request draws the
same tokens on any device and whatever other requests share its batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparring.types import GenerationParams

if TYPE_CHECKING:
    import torch

__all__ = ["pick_next_tokens", "row_generator"]


def pick_next_tokens(
    logits: torch.Tensor, params: list[GenerationParams], generators: list[torch.Generator | None]
) -> list[int]:
    """Next token id per row of ``logits`` (shape: rows x vocabulary).

    A row at temperature 0 takes the argmax; otherwise it samples from the softmax of
    logits / temperature, restricted to the smallest set of tokens whose probability mass
    reaches ``top_p``, drawing from that row's generator (None: torch's global RNG).
    """
    import torch

    picks: list[int] = logits.argmax(dim=-1).tolist()
    for i, (p, gen) in enumerate(zip(params, generators, strict=True)):
        if p.temperature == 0:
            continue
        probs = torch.softmax(logits[i].float().cpu() / p.temperature, dim=-1)
        if p.top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            # A token is outside the nucleus when the tokens ranked above it already hold top_p.
            outside = sorted_probs.cumsum(0) - sorted_probs >= p.top_p
            sorted_probs[outside] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        picks[i] = int(torch.multinomial(probs, 1, generator=gen).item())
    return picks


def row_generator(params: GenerationParams) -> torch.Generator | None:
    """A per-row CPU generator for seeded sampling, so batch-mates do not change the draw."""
    import torch

    if params.temperature == 0 or params.seed is None:
        return None
    return torch.Generator().manual_seed(params.seed)
