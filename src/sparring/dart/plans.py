"""The attempts each DART stage sends through the engine, built as plain data.

A spec's key is a hash of its content, and every sampling seed here is derived from what
the attempt is (run seed, round, behavior, candidate, sample), so a resumed run rebuilds the
same keys and the engine skips what the store already holds. Changing a field here changes
the keys of stored runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sparring.dart.candidate import Candidate
from sparring.dart.config import DartConfig
from sparring.dart.directions import cell_key
from sparring.dart.red import RedRequest, red_messages
from sparring.dart.splits import DartData
from sparring.types import AttemptSpec, Behavior, GenerationParams, Message, content_hash

RED_TOP_P = 0.95
"""Nucleus sampling mass for the red model, probability."""
DISTILL_TEMPERATURE = 0.7
"""Sampling temperature of context-distilled target answers."""


def attempt_spec(
    behavior_id: str,
    attack: str,
    messages: Sequence[Message],
    params: GenerationParams,
    r: int,
    phase: str,
    *,
    seed: list[Any],
    sample: int = 0,
    **meta: Any,
) -> AttemptSpec:
    """One attempt of round ``r``; its sampling seed is a hash of ``seed``."""
    sampled = params.model_copy(update={"seed": int(content_hash(seed)[:8], 16)})
    return AttemptSpec(
        behavior_id=behavior_id,
        attack=attack,
        messages=tuple(messages),
        sample=sample,
        params=sampled,
        meta={"round": r, "phase": phase, **meta},
    )


def red_plan(
    config: DartConfig, pending: Sequence[tuple[RedRequest, int]], r: int, attempt: int
) -> list[AttemptSpec]:
    """Red-model drafts for (request, draft index k) pairs, on the ``attempt``-th try."""
    params = GenerationParams(
        max_tokens=config.red_max_tokens, temperature=config.red_temperature, top_p=RED_TOP_P
    )
    return [
        attempt_spec(
            req.behavior.id,
            "red-writer",
            red_messages(req),
            params,
            r,
            "red",
            seed=[config.seed, r, i, k, attempt],
            cell=cell_key(req.cell),
            k=k,
            attempt=attempt,
        )
        for i, (req, k) in enumerate(pending)
    ]


def target_plan(config: DartConfig, candidates: Sequence[Candidate], r: int) -> list[AttemptSpec]:
    """K_tgt target samples of every candidate attack, to be judged."""
    params = GenerationParams(
        max_tokens=config.target_max_tokens, temperature=config.target_temperature
    )
    return [
        attempt_spec(
            c.behavior_id,
            "red",
            [Message(role="user", content=c.text)],
            params,
            r,
            "attack",
            seed=[config.seed, c.key, k],
            candidate=c.key,
            cell=cell_key(c.cell),
            sample=k,
        )
        for c in candidates
        for k in range(config.k_tgt)
    ]


Ask = tuple[str, str, list[Any], dict[str, Any]]
"""One prompt to sample K_tgt times: behavior id, user text, seed prefix, extra meta."""


def distill_plan(config: DartConfig, candidates: Sequence[Candidate], r: int) -> list[AttemptSpec]:
    """K_tgt target answers per candidate under the safety system prompt."""
    asks = [(c.behavior_id, c.text, [config.seed, c.key], {"candidate": c.key}) for c in candidates]
    return _prompted_samples(config, config.safety_prompt, asks, r, "distill", "distill")


def anchor_plan(config: DartConfig, intents: Sequence[Behavior], r: int) -> list[AttemptSpec]:
    """K_tgt target answers per plain intent under the safety system prompt."""
    asks = [(b.id, b.text, [config.seed, "anchor", b.id], {"candidate": b.id}) for b in intents]
    return _prompted_samples(config, config.safety_prompt, asks, r, "anchor", "anchor")


def _prompted_samples(
    config: DartConfig,
    system: str,
    asks: Sequence[Ask],
    r: int,
    attack: str,
    phase: str,
) -> list[AttemptSpec]:
    """K_tgt sampled target answers per ask under the system prompt ``system``."""
    params = GenerationParams(max_tokens=config.target_max_tokens, temperature=DISTILL_TEMPERATURE)
    return [
        attempt_spec(
            bid,
            attack,
            [Message(role="system", content=system), Message(role="user", content=text)],
            params,
            r,
            phase,
            seed=[*seed, k],
            sample=k,
            **meta,
        )
        for bid, text, seed, meta in asks
        for k in range(config.k_tgt)
    ]


def replay_plan(
    config: DartConfig, behaviors: Sequence[Behavior], r: int = 0, **meta: Any
) -> list[AttemptSpec]:
    """Greedy target answers to replay prompts: the base target's, for replay (round 0,
    phase ``replay``), or round ``r``'s trained target's, for its repair pass (phase
    ``repair``; ``meta`` names the model, so that other weights are asked afresh)."""
    params = GenerationParams(max_tokens=config.target_max_tokens, temperature=0.0)
    return [
        attempt_spec(
            b.id,
            "replay",
            [Message(role="user", content=b.text)],
            params,
            r,
            "repair" if r else "replay",
            seed=[b.id],
            **meta,
        )
        for b in behaviors
    ]


def helpful_replay_plan(
    config: DartConfig, behaviors: Sequence[Behavior], system: str
) -> list[AttemptSpec]:
    """K_tgt base-target answers per replay prompt it refused, under the helpful prompt
    ``system``."""
    asks: list[Ask] = [(b.id, b.text, [b.id, "helpful"], {}) for b in behaviors]
    return _prompted_samples(config, system, asks, 0, "replay-helpful", "replay")


def final_red_plan(
    config: DartConfig, attacks: Mapping[str, str], target_name: str
) -> list[AttemptSpec]:
    """Greedy answers of one target (``base`` or ``final``) to the final red model's
    attacks, given as behavior id → attack text."""
    params = GenerationParams(max_tokens=config.target_max_tokens, temperature=0.0)
    return [
        attempt_spec(
            bid,
            "final-red",
            [Message(role="user", content=text)],
            params,
            config.iterations + 1,
            f"final-red-{target_name}",
            seed=[bid],
        )
        for bid, text in sorted(attacks.items())
    ]


def eval_plan(data: DartData, config: DartConfig, r: int) -> list[AttemptSpec]:
    """Greedy answers to the held-out, public and benign prompts after round ``r``, and to
    the round gate's validation prompts."""
    groups = (
        ("held_out", data.held_out),
        ("public", data.public),
        ("benign", data.benign),
        ("validation", data.validation),
        ("validation_benign", data.validation_benign),
    )
    return _greedy_plan(config, groups, r, "eval")


def blend_plan(data: DartData, config: DartConfig, r: int, model: str) -> list[AttemptSpec]:
    """Greedy answers of one candidate adapter of round ``r`` (``model``, its id) to the
    round gate's validation prompts (``repair_blend``)."""
    groups = (("validation", data.validation), ("validation_benign", data.validation_benign))
    return _greedy_plan(config, groups, r, "blend", model=model)


def _greedy_plan(
    config: DartConfig,
    groups: Sequence[tuple[str, Sequence[Behavior]]],
    r: int,
    phase: str,
    **meta: Any,
) -> list[AttemptSpec]:
    """One greedy answer per prompt of each (group, prompts), in phase ``PHASE-GROUP``."""
    params = GenerationParams(max_tokens=config.target_max_tokens, temperature=0.0)
    return [
        attempt_spec(
            b.id,
            "direct",
            [Message(role="user", content=b.text)],
            params,
            r,
            f"{phase}-{group}",
            seed=[b.id],
            group=group,
            **meta,
        )
        for group, behaviors in groups
        for b in behaviors
    ]
