"""How much of a round's repair to keep, chosen on the gate's validation prompts
(``repair_blend``).

The repair (``replay_repair``) trains a round again with the replay prompts it made the
target refuse. It brings over-refusal down, and gives back part of the round's cut in
violations with it. Between the adapter as trained and the repaired one lie their blends
(``ModelSlot.blend``): the round keeps the one with the largest share of the trained adapter
whose over-refusal on the validation prompts passes the gate, and skips the repair when the
trained adapter passes as it is. Each candidate's answers are stored under phase
``blend-GROUP`` with its model id; the round's evaluation then finds the kept one's in the
completion cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparring.dart.context import DartRun, adapter_paths, kept_evaluation
from sparring.dart.evaluation import evaluate_by_judge, round_gate
from sparring.dart.plans import blend_plan
from sparring.dart.target_eval import gate_line


async def validation_check(run: DartRun, r: int, weight: float) -> dict[str, Any]:
    """Round ``r``'s target as it stands, on the gate's validation prompts by every
    evaluation judge: the gate's figures per judge and whether its over-refusal passes
    (violations are left to the gate itself). ``weight`` is its share of the trained adapter,
    for the record."""
    margin = run.config.refusal_gate
    assert margin is not None, "DartConfig requires a refusal_gate with repair_blend"
    plan = blend_plan(run.data, run.config, r, run.target.model_id)
    async with run.chat(run.target) as model:
        results = await run.run_phase(model, plan, judged=True, evaluation=True)
    scores = evaluate_by_judge([results[spec.key] for spec in plan])
    steps = run.store.steps(run.run_id)
    judges = round_gate(steps["r0/eval"], kept_evaluation(steps, r), scores, margin)["judges"]
    passes = not any(j["over_refusal"] for j in judges.values())
    lines = "; ".join(gate_line(judge, g) for judge, g in judges.items())
    verdict = "passes" if passes else "refuses too much"
    run.say(f"  {weight:g} of the trained adapter, validation prompts: {lines}; {verdict}")
    return {"weight": weight, "passes": passes, "judges": judges}


async def try_blends(
    run: DartRun, r: int, trained: Path, repaired: Path, checks: list[dict[str, Any]]
) -> float:
    """Blends of round ``r``'s ``trained`` and ``repaired`` adapter folders at each of
    ``repair_blend``'s weights in turn, until one passes ``validation_check`` (each check is
    appended to ``checks``). The target is left on that blend, or else on the repaired
    adapter; returns the trained adapter's weight in it (0.0: the repaired adapter)."""
    fallback = adapter_paths(run.target)
    for weight in run.config.repair_blend:
        run.target.blend(trained, repaired, weight, f"r{r}-blend{weight:g}")
        checks.append(await validation_check(run, r, weight))
        if checks[-1]["passes"]:
            return weight
    run.target.restore(**fallback)
    return 0.0
