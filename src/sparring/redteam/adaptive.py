"""The adaptive campaign: Thompson sampling over techniques, learning which work on the
target while it attacks.

The arms are the scan's static techniques and the iterative methods. Each behavior has its
own budget of ``queries`` target queries; the campaign runs in rounds, and in each round
every behavior still without a success draws one arm: a sample from each arm's
Beta(1 + successes, 1 + failures) posterior, shared by all behaviors, and the highest wins.
A pull of a static arm sends the technique's next prompt; a pull of an iterative arm runs
that method afresh for at most ``pull_queries`` queries (PAIR as one stream). A pull
succeeds when the judge finds a reply unsafe. Posteriors are updated after the round, in
behavior order, and each draw has its own seed, so the campaign is the same on every run and
every resume.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from sparring.attacks import AttackPrompt
from sparring.redteam.config import ITERATIVE
from sparring.redteam.episode import Episode
from sparring.redteam.registry import METHODS
from sparring.redteam.static import send_static, static_prompts
from sparring.types import content_hash


@dataclass
class Arm:
    """What the campaign learned about one technique."""

    name: str
    pulls: int = 0
    successes: int = 0
    queries: int = 0
    """Target queries its pulls spent."""

    def draw(self, rng: random.Random) -> float:
        """A sample of its success probability from the Beta posterior (uniform prior)."""
        return rng.betavariate(1 + self.successes, 1 + self.pulls - self.successes)

    def to_dict(self) -> dict[str, Any]:
        """Its counts as stored in the run's ``adaptive/arms`` step."""
        return {"pulls": self.pulls, "successes": self.successes, "queries": self.queries}


@dataclass
class _Campaign:
    """One behavior's side of the campaign: its episode and what each arm has left."""

    episode: Episode
    prompts: dict[str, list[AttackPrompt]]
    """The static arms' prompts for this behavior."""
    used: dict[str, int] = field(default_factory=dict)
    """Pulls of each arm on this behavior so far."""

    def can_pull(self, arm: str) -> bool:
        """True when ``arm`` has something left to send within the remaining queries."""
        if arm in ITERATIVE:
            return self.episode.remaining > 0
        index = self.used.get(arm, 0)
        prompts = self.prompts[arm]
        return index < len(prompts) and 1 + len(prompts[index].followups) <= self.episode.remaining


async def adaptive(episodes: list[Episode]) -> dict[str, Arm]:
    """Run the campaign on ``episodes`` (one per behavior, method ``adaptive``), adding each
    pull's queries and counts to its behavior's episode; returns the arms."""
    config = episodes[0].config
    arms = {name: Arm(name) for name in config.arms}
    campaigns = []
    for episode in episodes:
        statics = [a for a in arms if a not in ITERATIVE]
        prompts = {a: await static_prompts(episode, a) for a in statics}
        episode.notes["pulls"] = []
        campaigns.append(_Campaign(episode, prompts))
    calls = episodes[0].calls
    for round_ in itertools.count():
        draws = [(c, _choose(c, arms, round_)) for c in campaigns if not c.episode.over]
        chosen = [(c, arm) for c, arm in draws if arm is not None]
        if not chosen:
            break
        results = await calls.parallel([_pull(c, arm) for c, arm in chosen])
        for (campaign, arm), (success, queries) in zip(chosen, results, strict=True):
            arms[arm].pulls += 1
            arms[arm].successes += success
            arms[arm].queries += queries
            campaign.episode.notes["pulls"].append(
                {"arm": arm, "queries": queries, "success": success}
            )
    return arms


def _choose(campaign: _Campaign, arms: dict[str, Arm], round_: int) -> str | None:
    """Thompson sampling among the arms this behavior can still pull; None when none."""
    episode = campaign.episode
    seed = int(content_hash([episode.config.seed, episode.behavior.id, "adaptive", round_])[:8], 16)
    rng = random.Random(seed)
    draws = {name: arm.draw(rng) for name, arm in arms.items()}
    open_arms = [name for name in arms if campaign.can_pull(name)]
    return max(open_arms, key=draws.__getitem__, default=None)


async def _pull(campaign: _Campaign, arm: str) -> tuple[bool, int]:
    """One pull of ``arm`` on the campaign's behavior: (succeeded, queries spent)."""
    episode = campaign.episode
    index = campaign.used.get(arm, 0)
    campaign.used[arm] = index + 1
    sub = _pull_episode(episode, arm, index)
    if arm in ITERATIVE:
        await METHODS.get(arm)(sub)
    else:
        await send_static(sub, campaign.prompts[arm][index], f"p{index}")
    episode.absorb(sub)
    return sub.success_at is not None, sub.spent


def _pull_episode(episode: Episode, arm: str, index: int) -> Episode:
    """The sub-episode of the ``index``-th pull of ``arm``: a static arm may use what the
    behavior has left, an iterative one ``pull_queries`` of it (PAIR as a single stream
    refining for that many steps)."""
    budgets = episode.budgets
    queries = episode.remaining
    if arm in ITERATIVE:
        queries = min(budgets.pull_queries, queries)
        if arm == "pair":
            budgets = budgets.model_copy(update={"streams": 1, "depth": budgets.pull_queries})
    return Episode(
        episode.calls,
        episode.config,
        episode.behavior,
        arm,
        queries,
        budgets,
        tag=f"adaptive{index}/",
    )
