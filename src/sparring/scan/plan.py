"""A scan's plan: the behaviors chosen and every attempt the attacks write for them.

The plan is fully determined by the ScanConfig: the behaviors chosen, the prompts each
attack writes and the sampling seeds all derive from ``config.seed``, so a resumed run
rebuilds the same plan and skips what the store already holds.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sparring.attacks import Attack, AttackContext, HelperRequest, get_attack
from sparring.data import load_behaviors_auto, parse_columns, suite
from sparring.errors import ConfigError
from sparring.models.provenance import trained_prompts
from sparring.scan.config import ScanConfig
from sparring.types import (
    HELPER_ATTACK_PREFIX,
    AttemptSpec,
    Behavior,
    Completion,
    GenerationParams,
    Message,
    content_hash,
)

#: The technique used for benign behaviors: over-refusal is measured on plain requests.
BENIGN_ATTACK = "direct"

HELPER_PARAMS = GenerationParams()
"""Decoding settings of helper calls: greedy, so they are cached and a re-run asks the same."""


def select_behaviors(behaviors: Sequence[Behavior], limit: int | None, seed: int) -> list[Behavior]:
    """At most ``limit`` behaviors, spread evenly over categories, chosen reproducibly.

    Categories take turns (round robin) so a small limit still covers every category.
    """
    if limit is None or len(behaviors) <= limit:
        return list(behaviors)
    rng = random.Random(seed)
    by_category: dict[str, list[Behavior]] = defaultdict(list)
    for behavior in behaviors:
        by_category[behavior.category].append(behavior)
    queues = [by_category[c] for c in sorted(by_category)]
    for queue in queues:
        rng.shuffle(queue)
    chosen: list[Behavior] = []
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop())
    return sorted(chosen, key=lambda b: b.id)


def load_scan_behaviors(
    config: ScanConfig, say: Callable[[str], None] | None = None
) -> list[Behavior]:
    """The harmful and benign behaviors the scan runs, after the limit is applied.

    ``say`` is given the one line on how a --behaviors file was read when neither its
    format nor its columns were named (which format, or which columns were taken), and one
    line when the target's weights were trained on some of the chosen prompts (see
    ``sparring.models.provenance``).
    """
    if config.behaviors is not None:
        columns = None if config.columns is None else parse_columns(config.columns)
        pool, note = load_behaviors_auto(config.behaviors, config.behaviors_format, columns)
        if note is not None and say is not None:
            say(note)
    elif config.columns is not None:
        raise ConfigError("--columns maps the columns of a --behaviors file; pass one or drop it")
    else:
        pool = suite(config.suite)
    harmful = select_behaviors([b for b in pool if not b.benign], config.limit, config.seed)
    benign = select_behaviors([b for b in pool if b.benign], config.limit, config.seed)
    if not harmful and not benign:
        raise ConfigError("the scan has no behaviors: check --suite / --behaviors")
    if say is not None and (note := seen_note(config, harmful, benign)) is not None:
        say(note)
    return harmful + benign


def seen_note(
    config: ScanConfig, harmful: Sequence[Behavior], benign: Sequence[Behavior]
) -> str | None:
    """A line saying how many of the chosen behaviors the target was trained on, when its
    weights come with a trained-prompts record and any are; None otherwise."""
    record = trained_prompts(config.target, config.target_options)
    if record is None:
        return None
    seen_harmful = record.seen(b.text for b in harmful)
    seen_benign = record.seen(b.text for b in benign)
    if not seen_harmful and not seen_benign:
        return None
    suites = ", ".join(record.suites) or "unnamed"
    return (
        f"note: the target was trained on {seen_harmful} of the {len(harmful)} harmful and "
        f"{seen_benign} of the {len(benign)} benign prompts of this scan ({record.path}); its "
        f"rates on them are not out of sample: for those, scan a suite it did not train on "
        f"(it trained on: {suites})"
    )


def with_system_prompt(
    messages: tuple[Message, ...], system_prompt: str | None
) -> tuple[Message, ...]:
    """Prepend the scan's system prompt unless the attack brought its own.

    It is part of the planned messages (not added at send time) so that it enters each
    attempt's key and is stored with every request.
    """
    if system_prompt is None or (messages and messages[0].role == "system"):
        return messages
    return (Message(role="system", content=system_prompt), *messages)


def scan_attacks(config: ScanConfig) -> dict[str, Attack[Any]]:
    """The scan's attacks by name, built with their options; ConfigError for one that
    needs a helper model when the scan has none."""
    attacks = {choice.name: choice.build() for choice in config.attacks}
    attacks.setdefault(BENIGN_ATTACK, get_attack(BENIGN_ATTACK))
    missing = [a.name for a in attacks.values() if a.needs_helper and config.helper is None]
    if missing:
        raise ConfigError(f"attacks {', '.join(missing)} need a helper model: pass --helper SPEC")
    return attacks


def judge_spec(
    config: ScanConfig, attacks: Mapping[str, Attack[Any]], behaviors: Sequence[Behavior]
) -> str:
    """The judge spec the scan runs: ``config.judge``, unless some of its attacks carry
    exact checks (``Attack.checked``): then ``exact`` when all do, else ``exact:JUDGE``,
    so each attempt is scored by its check, or by the scan's judge when it has none.
    A spec that already starts with ``exact`` is kept."""
    used = {choice.name for choice in config.attacks}
    if any(b.benign for b in behaviors):
        used.add(BENIGN_ATTACK)
    checked = {name for name in used if attacks[name].checked}
    spec = config.judge.strip()
    if not checked or spec == "exact" or spec.startswith("exact:"):
        return config.judge
    return "exact" if checked == used else f"exact:{spec}"


def _pairs(
    config: ScanConfig, behaviors: Sequence[Behavior], attacks: Mapping[str, Attack[Any]]
) -> Iterator[tuple[Behavior, Attack[Any]]]:
    """Every (behavior, attack) of the scan, in plan order."""
    for behavior in behaviors:
        names = [BENIGN_ATTACK] if behavior.benign else [c.name for c in config.attacks]
        for name in names:
            yield behavior, attacks[name]


def helper_attempts(
    config: ScanConfig,
    behaviors: Sequence[Behavior],
    attacks: Mapping[str, Attack[Any]],
    helper_id: str,
) -> dict[HelperRequest, AttemptSpec]:
    """The helper calls the attacks need, each as the attempt that runs it.

    Such an attempt's ``attack`` is ``helper:`` and the attack's name (``is_helper_attack``
    tells them apart, and metrics leave them out); it is sent to the helper model, stored,
    budgeted and resumed like any other. One request asked for several behaviors (the
    same text) is one attempt.
    """
    ctx = AttackContext(seed=config.seed, helper_id=helper_id)
    specs: dict[HelperRequest, AttemptSpec] = {}
    for behavior, attack in _pairs(config, behaviors, attacks):
        for request in attack.helper_requests(behavior, ctx):
            specs.setdefault(
                request,
                AttemptSpec(
                    behavior_id=behavior.id,
                    attack=f"{HELPER_ATTACK_PREFIX}{attack.name}",
                    messages=request.messages,
                    params=HELPER_PARAMS,
                    meta={"purpose": request.purpose},
                ),
            )
    return specs


async def build_plan(
    config: ScanConfig,
    behaviors: Sequence[Behavior],
    attacks: Mapping[str, Attack[Any]],
    *,
    helper_id: str | None = None,
    answers: Mapping[HelperRequest, Completion] | None = None,
) -> list[AttemptSpec]:
    """Every attempt of the scan, in a deterministic order.

    ``answers`` are the helper's completions of ``helper_attempts``; a model-driven attack
    whose request has none yet plans nothing for that behavior (its prompt is planned once
    the answer is stored), and one whose request failed raises HelperError.
    """
    ctx = AttackContext(
        seed=config.seed,
        helper_id=helper_id,
        answers=answers or {},
        system_prompt=config.system_prompt,
    )
    plan: list[AttemptSpec] = []
    for behavior, attack in _pairs(config, behaviors, attacks):
        for prompt in await attack.realize(behavior, ctx):
            messages = with_system_prompt(prompt.messages, config.system_prompt)
            for sample in range(config.samples):
                seed = int(content_hash([config.seed, behavior.id, attack.name, sample])[:8], 16)
                params = GenerationParams(
                    max_tokens=config.max_tokens, temperature=config.temperature, seed=seed
                )
                plan.append(
                    AttemptSpec(
                        behavior_id=behavior.id,
                        attack=attack.name,
                        messages=messages,
                        followups=prompt.followups,
                        sample=sample,
                        params=params,
                        meta=dict(prompt.meta),
                    )
                )
    return plan
