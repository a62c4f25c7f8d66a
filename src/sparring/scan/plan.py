"""A scan's plan: the behaviors chosen and every attempt the attacks write for them.

The plan is fully determined by the ScanConfig: the behaviors chosen, the prompts each
attack writes and the sampling seeds all derive from ``config.seed``, so a resumed run
rebuilds the same plan and skips what the store already holds.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from sparring.attacks import AttackContext, get_attack
from sparring.data import load_behaviors_auto, parse_columns, suite
from sparring.errors import ConfigError
from sparring.models import ChatModel
from sparring.scan.config import ScanConfig
from sparring.types import AttemptSpec, Behavior, GenerationParams, Message, content_hash

#: The technique used for benign behaviors: over-refusal is measured on plain requests.
BENIGN_ATTACK = "direct"


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
    format nor its columns were named (which format, or which columns were taken).
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
    return harmful + benign


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


async def build_plan(
    config: ScanConfig, behaviors: Sequence[Behavior], helper: ChatModel | None
) -> list[AttemptSpec]:
    """Every attempt of the scan, in a deterministic order."""
    templates = Path(config.templates_file) if config.templates_file else None
    ctx = AttackContext(seed=config.seed, helper=helper, templates_file=templates)
    attacks = {name: get_attack(name) for name in config.attacks}
    missing = [a.name for a in attacks.values() if a.needs_helper and helper is None]
    if missing:
        raise ConfigError(f"attacks {', '.join(missing)} need a helper model: pass --helper SPEC")
    plan: list[AttemptSpec] = []
    for behavior in behaviors:
        names = [BENIGN_ATTACK] if behavior.benign else list(config.attacks)
        for name in names:
            attack = attacks.get(name) or get_attack(name)
            for prompt in await attack.realize(behavior, ctx):
                messages = with_system_prompt(prompt.messages, config.system_prompt)
                for sample in range(config.samples):
                    seed = int(content_hash([config.seed, behavior.id, name, sample])[:8], 16)
                    params = GenerationParams(
                        max_tokens=config.max_tokens, temperature=config.temperature, seed=seed
                    )
                    plan.append(
                        AttemptSpec(
                            behavior_id=behavior.id,
                            attack=name,
                            messages=messages,
                            followups=prompt.followups,
                            sample=sample,
                            params=params,
                            meta=dict(prompt.meta),
                        )
                    )
    return plan
