"""The adaptive campaign learns which technique works on the target: on a scripted target
where one method succeeds far more often than another, it spends its pulls on the better
one and reports what it learned."""

from __future__ import annotations

from pathlib import Path

from redteam_scripts import attack, seed_of, servers
from sparring.redteam import load_report, run_redteam
from sparring.store import RunStore
from sparring.testing import ChatRequest
from sparring.types import Behavior

BEHAVIORS = [
    Behavior(id=f"b{i}", text=f"Harmful request number {i}", category="crime", source="test")
    for i in range(16)
]


def attacker(request: ChatRequest) -> str:
    """GOAT's messages work for 8 seeds in 10, Crescendo's for 2 in 10."""
    goat = "toolbox" in str(request.messages[0]["content"])
    works = seed_of(request) % 10 < (8 if goat else 2)
    want = "5" if works else "refuse"
    if goat:
        return attack(f"Message for the target WANT={want}", technique="persona")
    return f'{{"question": "Question for the target WANT={want}"}}'


async def test_the_bandit_spends_more_on_the_arm_that_succeeds_more(tmp_path: Path) -> None:
    async with servers(attacker) as s:
        with RunStore(tmp_path / "runs.sqlite") as store:
            config = s.config(methods="adaptive", arms="crescendo,goat", pull_queries=1, queries=6)
            result = await run_redteam(config, store, behaviors=BEHAVIORS)
            report = load_report(store, result.run_id)
    arms = {a.arm: a for a in report.arms}
    goat, crescendo = arms["goat"], arms["crescendo"]
    assert goat.success.n > crescendo.success.n
    assert goat.posterior_mean > crescendo.posterior_mean
    assert goat.success.value is not None and goat.success.value > 0.5
    (adaptive,) = report.methods
    assert adaptive.asr.k == sum(a.success.k for a in report.arms)
    assert sum(e["queries"] for e in report.episodes) == goat.queries + crescendo.queries
