"""PAIR: Prompt Automatic Iterative Refinement (Chao et al., "Jailbreaking Black Box Large
Language Models in Twenty Queries", 2023).

``streams`` independent attacker conversations run side by side for up to ``depth``
iterations each. In every iteration each stream's attacker sees its previous prompt, the
target's reply and the judge's score, and writes a better prompt; the search stops after
the first iteration in which any stream succeeds, or when the behavior's query budget is
spent (an iteration is cut to the streams the budget still pays for). A stream whose
attacker refuses ``attacker_tries`` times in a row ends there, and is counted.
"""

from __future__ import annotations

from sparring.redteam.episode import Episode
from sparring.redteam.refine import Refinement, refine_step
from sparring.redteam.registry import method


@method("pair")
async def pair(episode: Episode) -> None:
    """Run PAIR on the episode's behavior."""
    streams = {f"s{i}": Refinement() for i in range(episode.budgets.streams)}
    for step in range(episode.budgets.depth):
        live = list(streams)[: episode.remaining]
        if not live or episode.over:
            return
        steps = await episode.calls.parallel(
            [refine_step(episode, streams[s], stream=s, step=step) for s in live]
        )
        for name, (_, trial, refinement) in zip(live, steps, strict=True):
            if trial is None or trial.error is not None:
                del streams[name]  # the attacker gave up, or the target failed (both counted)
            else:
                streams[name] = refinement
