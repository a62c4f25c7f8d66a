"""Stage 4 of a DART round, the red update: every answered attack counts in the cell
statistics, successful novel ones join the global archive, and the red model is fine-tuned
on (red request → successful attack): the novel ones, or every one with
``red_learns_from: all``.

``learn_from`` runs on resumed rounds too (from the stored candidates), so the archive and
statistics a later round sees are the same whether or not the run was interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparring.dart.candidate import Candidate, request_from_json
from sparring.dart.context import DartRun
from sparring.dart.directions import CellStats, cell_key
from sparring.dart.red import red_messages
from sparring.train import SFTExample


def learn_from(run: DartRun, candidates: Sequence[Candidate]) -> None:
    """Update the archive, cell statistics and last-attack memory from a round."""
    for c in candidates:
        s = run.stats.get(c.cell, CellStats())
        success = c.unsafe > 0
        run.stats[c.cell] = CellStats(
            s.successes + int(success), s.trials + 1, s.archived + int(success and c.novel)
        )
        if c.answers:
            run.last_attack[c.behavior_id] = (c.text, c.answers[0][0])
    winners = successes(candidates, novel_only=True)
    run.archive.add([c.text for c in winners], [cell_key(c.cell) for c in winners])


def successes(candidates: Sequence[Candidate], novel_only: bool) -> list[Candidate]:
    """The round's successful attacks (at least one unsafe answer), or only the novel ones:
    those join the archive."""
    return [c for c in candidates if c.unsafe > 0 and (c.novel or not novel_only)]


async def train_red(run: DartRun, r: int, candidates: Sequence[Candidate]) -> None:
    """LoRA SFT of the red model on the round's successful attacks, novel ones only unless
    ``red_learns_from`` is ``all`` (none: the adapter stays); stored as ``rN/red-train`` with
    the adapter paths."""
    winners = successes(candidates, novel_only=run.config.red_learns_from == "novel")
    if winners:
        run.say(f"  training the red model on {len(winners)} successful attacks")
    examples = [
        SFTExample(
            messages=tuple(red_messages(request_from_json(c.request, run.behaviors))),
            response=f"<attack>{c.text}</attack>",
        )
        for c in winners
    ]
    payload: dict[str, Any] = {"examples": len(winners)}
    payload |= run.train(run.red, examples, run.config.red_lora, r)
    run.record(f"r{r}/red-train", payload)
