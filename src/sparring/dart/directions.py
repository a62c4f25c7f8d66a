"""Attack directions: the (risk category × attack style) cells the red model is pointed at.

Each round DART moves its attention toward cells where the target is still vulnerable but
the archive of accepted attacks is sparse. The weight of a cell is

    w(cell) ∝ asr(cell) × (1 − density(cell)) + floor

where ``asr`` is the Laplace-smoothed attack success rate observed in that cell
((successes + 1) / (trials + 2), so an untried cell starts at 0.5 rather than 0) and
``density`` is the cell's share of the archive relative to the fullest cell. The small
``floor`` keeps every cell reachable.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Cell = tuple[str, str]
"""(risk category, attack style)."""


@dataclass(frozen=True)
class CellStats:
    """What the loop has seen in one cell so far."""

    successes: int = 0
    trials: int = 0
    archived: int = 0


def direction_weights(
    cells: Iterable[Cell], stats: Mapping[Cell, CellStats], floor: float = 0.02
) -> dict[Cell, float]:
    """Sampling probability of each cell (they sum to 1)."""
    cell_list = list(cells)
    if not cell_list:
        return {}
    fullest = max((stats.get(c, CellStats()).archived for c in cell_list), default=0)
    raw: dict[Cell, float] = {}
    for cell in cell_list:
        s = stats.get(cell, CellStats())
        asr = (s.successes + 1) / (s.trials + 2)
        density = s.archived / fullest if fullest else 0.0
        raw[cell] = asr * (1.0 - density) + floor
    total = sum(raw.values())
    return {cell: w / total for cell, w in raw.items()}


def sample_directions(weights: Mapping[Cell, float], k: int, rng: random.Random) -> list[Cell]:
    """Draw ``k`` cells with replacement according to ``weights``, reproducibly."""
    cells = sorted(weights)
    return rng.choices(cells, weights=[weights[c] for c in cells], k=k)


def cell_key(cell: Cell) -> str:
    """The string form of a cell used in the archive and the store: ``category|style``."""
    return f"{cell[0]}|{cell[1]}"
