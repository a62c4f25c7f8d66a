"""The target meets the attacks: stage 3 of a round (K_tgt judged samples per accepted
attack, judged against the original intent), the evaluation after every round on held-out
prompts (by the training judge and the second judge), the round gate on the validation
prompts, and the final red-team evaluation of base against final target."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sparring.dart.attack_writing import Draft, write_attacks
from sparring.dart.candidate import Candidate, request_json, tally
from sparring.dart.context import DartRun, stored_adapter
from sparring.dart.evaluation import evaluate_by_judge, round_gate
from sparring.dart.plans import eval_plan, final_red_plan, target_plan
from sparring.dart.red import ATTACK_STYLES, RedRequest
from sparring.dart.splits import with_category
from sparring.report.formatting import pct, rate_line
from sparring.stats import Rate
from sparring.types import content_hash


async def query_target(
    run: DartRun, r: int, drafts: Sequence[Draft], novel: Sequence[bool]
) -> list[Candidate]:
    """Send each draft to the target K_tgt times and tally the verdicts; ``novel`` says
    which passed the global-diversity test."""
    candidates = [
        Candidate(
            content_hash([r, req.behavior.id, text]),
            req.behavior.id,
            req.cell,
            text,
            request_json(req),
            novel=is_novel,
        )
        for (req, text), is_novel in zip(drafts, novel, strict=True)
    ]
    plan = target_plan(run.config, candidates, r)
    async with run.chat(run.target) as model:
        results = await run.run_phase(model, plan, judged=True)
    by_key = {c.key: c for c in candidates}
    for spec in plan:
        tally(by_key[spec.meta["candidate"]], results[spec.key])
    return candidates


async def evaluate(run: DartRun, r: int) -> dict[str, Any]:
    """Violation, over-refusal and compliance rates and helpfulness of the current target,
    by every evaluation judge; stored as ``rN/eval`` and returned."""
    plan = eval_plan(run.data, run.config, r)
    async with run.chat(run.target) as model:
        results = await run.run_phase(model, plan, judged=True, evaluation=True)
    scores = evaluate_by_judge([results[s.key] for s in plan])
    run.record(f"r{r}/eval", scores)
    for judge_id, rates in scores["judges"].items():
        helpful = rates["helpfulness"]["value"]
        run.say(
            f"  evaluation after round {r} by {judge_id}: "
            + ", ".join(
                f"{name} {rate_line(Rate.from_dict(rates[name]))}"
                for name in ("vr_held_out", "vr_public", "over_refusal")
            )
            + ("" if helpful is None else f", helpfulness {helpful:.2f}")
        )
    return scores


def gate_round(
    run: DartRun,
    r: int,
    evaluations: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
    kept: dict[str, str | None],
    margin: float,
) -> dict[str, Any]:
    """The round gate (``evaluation.round_gate``, margin ``margin``, a probability) on
    ``evaluations``: the base target's, the replaced target's and round ``r``'s. A rejected
    round puts the target back on ``kept``, the adapter it had before the round. Stored as
    ``rN/gate`` (with ``kept``) and returned."""
    gate = round_gate(*evaluations, margin) | {"kept": kept}
    if gate["rejected"]:
        run.target.restore(**stored_adapter(kept))
    lines = "; ".join(gate_line(judge, g) for judge, g in gate["judges"].items())
    verdict = "rejected" if gate["rejected"] else "kept"
    run.say(f"  round gate, validation prompts: {lines}; round {r} {verdict}")
    run.record(f"r{r}/gate", gate)
    return gate


def gate_line(judge: str, g: dict[str, Any]) -> str:
    """One judge's figures in the gate, and what it found too high."""
    too_high = " and ".join(
        name
        for key, name in (("violations", "violations"), ("over_refusal", "over-refusal"))
        if g[key]
    )
    return (
        f"{judge} violations {_pct(g['vr_kept'])} (kept) -> {_pct(g['vr_now'])}, over-refusal "
        f"{_pct(g['over_refusal_base'])} (base) -> {_pct(g['over_refusal_now'])}"
        + (f" ({too_high} too high)" if too_high else "")
    )


def _pct(stored: dict[str, Any]) -> str:
    return pct(Rate.from_dict(stored).value)


async def final_red_eval(run: DartRun) -> None:
    """Attacks from the final red model on held-out intents, against base and final target;
    stored as ``final/red-eval``."""
    rng = random.Random(run.config.seed + 7)
    styles = sorted(ATTACK_STYLES)
    requests = [
        RedRequest(with_cat, (with_cat.category, rng.choice(styles)))
        for with_cat in (with_category(b) for b in run.data.held_out[: run.config.n_red_eval])
    ]
    run.say(f"final red-team evaluation on {len(requests)} held-out intents")
    drafts, _ = await write_attacks(run, run.config.iterations + 1, requests)
    firsts: dict[str, str] = {}
    for req, text in drafts:
        firsts.setdefault(req.behavior.id, text)
    payload: dict[str, Any] = {"attacks": len(firsts)}
    judges: dict[str, Any] = {}
    for name, slot in (("base", run.base_target()), ("final", run.target)):
        plan = final_red_plan(run.config, firsts, name)
        async with run.chat(slot) as model:
            results = await run.run_phase(model, plan, judged=True, evaluation=True)
        scores = evaluate_by_judge([results[s.key] for s in plan])
        payload[name] = scores["vr_held_out"]
        judges[name] = scores["judges"]
    run.record("final/red-eval", payload | {"judges": judges})
