"""Stage 5 of a DART round, target active learning: pick the prompts to train on
(uncertainty for DART, every successful attack for MART), find a safe answer for each (the
target's own, else context-distilled) and for the plain intent each was written from, top
them up with earlier rounds' safety examples when the round has few (rehearsal), and
fine-tune the target on them mixed with a replay of its own benign answers (benign prompts,
look-alikes and writing tasks); with ``replay_repair``, train the round again with the
replay prompts its first training made the target refuse added, and with ``repair_blend``
keep only as much of that repair as the gate's over-refusal check needs."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sparring.dart.active import (
    PromptOutcome,
    best_safe_answer,
    select_all_unsafe,
    select_uncertain,
)
from sparring.dart.candidate import Answer, Candidate, judged_answers
from sparring.dart.config import DartConfig
from sparring.dart.context import DartRun, adapter_paths, adapter_rounds
from sparring.dart.plans import anchor_plan, distill_plan, helpful_replay_plan, replay_plan
from sparring.dart.repair_blend import try_blends, validation_check
from sparring.judges.rules import read_response
from sparring.train import LoRAConfig, SFTExample
from sparring.types import AttemptResult, AttemptSpec, Message, content_hash

Replay = tuple[str, SFTExample]
"""A replay example with the id of the behavior it answers."""


def select(run: DartRun, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The prompts the target trains on this round."""
    _, active = run.config.flags
    outcomes = [PromptOutcome(c.key, c.unsafe, c.scored) for c in candidates]
    if active:
        budget = max(1, math.ceil(run.config.budget_fraction * len(candidates)))
        chosen = select_uncertain(outcomes, budget)
    else:
        chosen = select_all_unsafe(outcomes)
    by_key = {c.key: c for c in candidates}
    return [by_key[o.key] for o in chosen]


async def train_target(run: DartRun, r: int, candidates: Sequence[Candidate]) -> None:
    """LoRA SFT of the target on the selected prompts' safe answers plus replay (none: the
    adapter stays), then its repair pass (``replay_repair``); stored as ``rN/target-train``
    with the selection and the paths of the adapter the round ends with."""
    selected = select(run, candidates)
    answers, distilled = await safe_answers(run, r, selected)
    examples = [
        SFTExample(messages=(Message(role="user", content=c.text),), response=answers[c.key])
        for c in selected
        if c.key in answers
    ]
    anchored = (
        await anchor_examples(run, r, selected) if examples and run.config.anchor_intents else []
    )
    new = examples + anchored
    # Replay and rehearsal alone do not train: without a new safe answer, the adapter stays.
    rehearsed = rehearsal(run, r, len(new)) if examples else []
    safety = new + rehearsed
    pool, helpful = await replay_examples(run)
    drawn = round_replay(pool, len(safety), run.config, r)
    replay = [example for _, example in drawn]
    borderline = {b.id for b in run.data.borderline}
    payload: dict[str, Any] = {
        "selected": [c.key for c in selected],
        "with_safe_answer": len(examples),
        "distilled": distilled,
        "anchored": len(anchored),
        "rehearsed": len(rehearsed),
        "replay": len(replay),
        "replay_borderline": sum(bid in borderline for bid, _ in drawn),
        "replay_helpful": sum(bid in helpful for bid, _ in drawn),
        "safety_examples": [[e.messages[-1].content, e.response] for e in new],
    }
    run.say(
        f"  active learning picked {len(selected)} prompts; {len(examples)} have a safe "
        f"answer ({distilled} by context distillation); {len(anchored)} plain intents "
        f"anchored; {len(rehearsed)} rehearsed from "
        f"earlier rounds; {len(replay)} replay examples ({payload['replay_borderline']} "
        f"look-alikes or writing tasks, {payload['replay_helpful']} answered under the "
        "helpful prompt)"
    )
    lora = round_lora(run.config, adapter_rounds(run.store.steps(run.run_id), r))
    training = safety + replay if examples else []
    start = adapter_paths(run.target)
    payload |= run.train(run.target, training, lora, r)
    if examples and run.config.replay_repair:
        payload |= await repair_round(run, r, pool, training, start, lora)
    run.record(f"r{r}/target-train", payload)


async def repair_round(
    run: DartRun,
    r: int,
    pool: Sequence[Replay],
    training: Sequence[SFTExample],
    start: dict[str, str | None],
    lora: LoRAConfig,
) -> dict[str, Any]:
    """Round ``r``'s repair, weighed on the validation prompts when ``repair_blend`` lists
    weights (``repair_blend.py``): none when the trained target passes the gate's
    over-refusal check, else ``repair`` and then, if it trained again, the blends. Returns
    the step record's ``repair`` and ``blend`` entries (the trained adapter's weight in the
    one kept, and every check) and the paths of the adapter the round ends with."""
    trained = run.target.adapter_dir
    checks = [await validation_check(run, r, 1.0)] if run.config.repair_blend else []
    if checks and checks[0]["passes"]:
        return {"blend": {"weight": 1.0, "checks": checks}}
    record: dict[str, Any] = {"repair": await repair(run, r, pool, training, start, lora)}
    repaired, weight = run.target.adapter_dir, 1.0
    if checks and "train" in record["repair"] and trained and repaired:
        weight = await try_blends(run, r, trained, repaired, checks)
    if checks:
        record["blend"] = {"weight": weight, "checks": checks}
    return record | adapter_paths(run.target)


async def repair(
    run: DartRun,
    r: int,
    pool: Sequence[Replay],
    training: Sequence[SFTExample],
    start: dict[str, str | None],
    lora: LoRAConfig,
) -> dict[str, Any]:
    """Round ``r``'s repair: the just-trained target answers every replay prompt of
    ``pool`` (greedy); when it refuses some, the round trains again, from the adapter it
    started from (``start``), on its ``training`` examples plus those prompts' replay
    answers (a second copy of any its replay drew). Returns the counts (prompts asked,
    refused, failed) and, when it trained again, the trainer's record under ``train``."""
    behaviors = {b.id: b for b in run.data.replay}
    plan = replay_plan(
        run.config, [behaviors[bid] for bid, _ in pool], r, model=run.target.model_id
    )
    async with run.chat(run.target) as model:
        results = await run.run_phase(model, plan, judged=False)
    failed = sum(results[spec.key].error is not None for spec in plan)
    ids = {spec.behavior_id for spec in plan if _refused(results[spec.key])}
    refused = [example for bid, example in pool if bid in ids]
    run.say(
        f"  repair: the trained target refused {len(refused)} of {len(plan)} replay prompts "
        f"({failed} failed)" + ("; training the round again with them added" if refused else "")
    )
    counts = {"asked": len(plan), "refused": len(refused), "failed": failed}
    if not refused:
        return counts
    run.target.restore(**start)
    return counts | {"train": run.train(run.target, [*training, *refused], lora, r, "-repair")}


def rehearsal(run: DartRun, r: int, new: int) -> list[SFTExample]:
    """Earlier rounds' safety examples (stored in their ``rN/target-train`` steps) that
    round ``r``, with ``new`` examples of its own, adds to reach ``min_safety``: drawn at
    random (seeded by the run's seed and ``r``)."""
    wanted = run.config.min_safety - new
    steps = run.store.steps(run.run_id)
    earlier = [
        pair
        for k in range(1, r)
        for pair in steps.get(f"r{k}/target-train", {}).get("safety_examples", [])
    ]
    if wanted <= 0 or not earlier:
        return []
    return [
        SFTExample(messages=(Message(role="user", content=prompt),), response=answer)
        for prompt, answer in _rng(run.config.seed, "rehearse", r).sample(
            earlier, min(wanted, len(earlier))
        )
    ]


def _rng(seed: int, stage: str, r: int) -> random.Random:
    """The random draws of ``stage`` in round ``r`` of a run with ``seed``."""
    return random.Random(int(content_hash([seed, stage, r])[:8], 16))


def replay_count(config: DartConfig, safety_examples: int, available: int) -> int:
    """Replay examples in a round with ``safety_examples`` to learn: ``replay_ratio`` per
    safety example, but at least ``min_replay``, and no more than ``available``."""
    wanted = max(config.min_replay, math.floor(config.replay_ratio * safety_examples))
    return min(available, wanted)


def round_replay(
    replay: Sequence[Replay], safety_examples: int, config: DartConfig, r: int
) -> list[Replay]:
    """The replay examples of round ``r``: ``replay_count`` of them, drawn afresh each round
    (seeded by the run's seed and ``r``), so that a small round's replay mixes benign
    prompts and look-alikes (they come last in ``replay``) and later rounds replay others."""
    count = replay_count(config, safety_examples, len(replay))
    return _rng(config.seed, "replay", r).sample(list(replay), count)


def round_lora(config: DartConfig, trained: int) -> LoRAConfig:
    """The target's LoRA settings for a round that continues an adapter trained in
    ``trained`` earlier rounds (``adapter_rounds``): its learning rate decays by
    ``target_lr_decay`` per such round, so a round after a rejected one (which starts from
    the adapter kept before it) trains at the rate that adapter's next round would have."""
    lr = config.target_lora.learning_rate * config.target_lr_decay**trained
    return config.target_lora.model_copy(update={"learning_rate": lr})


def best(run: DartRun, answers: Sequence[Answer]) -> str | None:
    """The answer to train on among judged samples, by the run's thresholds."""
    return best_safe_answer(
        answers,
        run.config.safe_threshold,
        run.config.helpful_threshold,
        refusals_only=run.config.safe_answers == "refusal",
    )


async def safe_answers(
    run: DartRun, r: int, selected: Sequence[Candidate]
) -> tuple[dict[str, str], int]:
    """Best own safe answer per prompt; for those without one, the best of K_tgt answers
    written under the safety system prompt (context distillation). In round 1 with
    ``distill_first_round`` every prompt is distilled. A prompt with no passing answer
    either way is left out of training (counted in the step record). Returns the answers
    by candidate key and how many were distilled."""
    own = not (r == 1 and run.config.distill_first_round)
    answers = {c.key: a for c in selected if own and (a := best(run, c.answers)) is not None}
    missing = [c for c in selected if c.key not in answers]
    if not missing:
        return answers, 0
    distilled = await _prompted_answers(run, distill_plan(run.config, missing, r))
    return answers | distilled, len(distilled)


async def anchor_examples(run: DartRun, r: int, selected: Sequence[Candidate]) -> list[SFTExample]:
    """The plain intents the selected attacks were written from, each once, with the best
    of K_tgt answers the target writes to it under the safety prompt (an intent with no
    passing answer is left out)."""
    seeds = {b.id: b for b in run.data.seeds}
    intents = [seeds[bid] for bid in dict.fromkeys(c.behavior_id for c in selected)]
    answers = await _prompted_answers(run, anchor_plan(run.config, intents, r))
    return [
        SFTExample(messages=(Message(role="user", content=b.text),), response=answers[b.id])
        for b in intents
        if b.id in answers
    ]


async def _prompted_answers(run: DartRun, plan: Sequence[AttemptSpec]) -> dict[str, str]:
    """Run ``plan``'s samples on the current target, judged, and keep the best passing
    answer per ``candidate`` meta key."""
    async with run.chat(run.target) as model:
        results = await run.run_phase(model, plan, judged=True)
    grouped: dict[str, list[Answer]] = defaultdict(list)
    for spec in plan:
        grouped[spec.meta["candidate"]].extend(judged_answers(results[spec.key]))
    return {
        key: answer for key, group in grouped.items() if (answer := best(run, group)) is not None
    }


async def replay_examples(run: DartRun) -> tuple[list[Replay], set[str]]:
    """The base target's own answers to the replay prompts (self-distillation) with their
    behavior ids, generated once per run, and the ids whose answer was written under
    ``helpful_prompt`` because the plain answer was a refusal (trained without that prompt).
    A prompt still refused is left out: replay teaches answering, not refusing."""
    plan = replay_plan(run.config, run.data.replay)
    async with run.chat(run.base_target()) as model:
        results = await run.run_phase(model, plan, judged=False)
        answers = {spec.behavior_id: _answer(results[spec.key]) for spec in plan}
        refused = [b for b in run.data.replay if answers[b.id] is None]
        helpful: set[str] = set()
        prompt = run.config.helpful_prompt
        if refused and prompt is not None:
            retry = helpful_replay_plan(run.config, refused, prompt)
            retried = await run.run_phase(model, retry, judged=False)
            for spec in retry:
                text = _answer(retried[spec.key])
                if text is not None and answers[spec.behavior_id] is None:
                    answers[spec.behavior_id] = text
                    helpful.add(spec.behavior_id)
    examples = [
        (b.id, SFTExample(messages=(Message(role="user", content=b.text),), response=text))
        for b in run.data.replay
        if (text := answers[b.id]) is not None
    ]
    return examples, helpful


def _answer(result: AttemptResult) -> str | None:
    """A replay attempt's text, or None when it failed or reads as a refusal."""
    text = result.completions[0].text if result.completions else ""
    return text if result.error is None and not read_response(text).refused else None


def _refused(result: AttemptResult) -> bool:
    """Whether a replay attempt answered, and with a refusal (a failed one did neither)."""
    return result.error is None and _answer(result) is None
