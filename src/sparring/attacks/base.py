"""The Attack interface, the registry of techniques, and helpers every technique shares.

An attack turns a Behavior into one or more AttackPrompts: the messages sent first and the
user turns that follow. Realisations are pure functions of (attack, seed, behavior id) plus,
for model-driven transforms, the helper model's answers, so a re-run plans the same
attempts and the store's content keys match.
"""

from __future__ import annotations

import hashlib
import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field

from sparring.errors import EXIT_MODEL, ConfigError, SparringError
from sparring.models.base import ChatModel
from sparring.types import Behavior, Frozen, GenerationParams, Message

FAMILIES: tuple[str, ...] = (
    "baseline",
    "jailbreak.template",
    "jailbreak.competing-objectives",
    "jailbreak.scenario",
    "jailbreak.encoding",
    "jailbreak.multilingual",
    "jailbreak.in-context",
    "jailbreak.decomposition",
)
"""Taxonomy ids (see TAXONOMY.md section 1.1) an attack's ``family`` may take."""

Access = Literal["black-box", "white-box"]

_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class HelperError(SparringError):
    """The helper model failed to produce the text a model-driven transform needs."""

    exit_code = EXIT_MODEL


class AttackPrompt(Frozen):
    """One realisation of an attack: what the target is sent, turn by turn.

    ``messages`` is sent first (it may hold a system message or a faux prior dialogue and
    always ends with a user turn); each entry of ``followups`` is sent as a further user
    turn after the target's previous reply.
    """

    messages: tuple[Message, ...] = Field(min_length=1)
    followups: tuple[str, ...] = ()
    meta: dict[str, Any] = Field(
        default_factory=dict, description="JSON-serialisable details: template id, encoding."
    )


@dataclass
class AttackContext:
    """What a realisation may draw on besides the behavior."""

    seed: int = 0
    """Run seed; with the behavior id it fixes every random choice of a technique."""
    helper: ChatModel | None = None
    """Model for model-driven transforms (translation, paraphrase); None when not given."""
    params: GenerationParams = field(default_factory=lambda: GenerationParams.model_validate({}))
    """Decoding settings for calls to ``helper``."""
    templates_file: Path | None = None
    """User template file for the ``template-file`` attack."""


class Attack(ABC):
    """A jailbreak technique: Behavior -> AttackPrompts.

    Subclasses set the class attributes and implement ``realize``; ``@register`` makes them
    available by name. Constructor keyword arguments are the technique's options.
    """

    name: ClassVar[str]
    """Registry key, kebab-case, e.g. ``prefix-injection``."""
    family: ClassVar[str]
    """Taxonomy id from FAMILIES, e.g. ``jailbreak.encoding``."""
    description: ClassVar[str]
    """One line for catalogue listings."""
    needs_helper: ClassVar[bool] = False
    """True when ``realize`` cannot run without ``AttackContext.helper``."""
    access: ClassVar[Access] = "black-box"
    """What the technique needs of the target: chat text only, or weights and gradients."""

    @abstractmethod
    async def realize(self, behavior: Behavior, ctx: AttackContext) -> list[AttackPrompt]:
        """Turn ``behavior`` into at least one AttackPrompt, deterministically for a seed."""


ATTACKS: dict[str, type[Attack]] = {}
"""Every registered technique by name; filled by importing ``sparring.attacks``."""

A = TypeVar("A", bound=type[Attack])


def register(cls: A) -> A:
    """Class decorator that adds an Attack subclass to ATTACKS under its ``name``."""
    name = cls.name
    if not _KEBAB.match(name):
        raise ValueError(f"attack name {name!r} must be kebab-case")
    if cls.family not in FAMILIES:
        raise ValueError(f"attack {name!r} has unknown family {cls.family!r}")
    if name in ATTACKS and ATTACKS[name] is not cls:
        raise ValueError(f"attack name {name!r} is registered twice")
    ATTACKS[name] = cls
    return cls


def get_attack(name: str, **options: Any) -> Attack:
    """Build the attack registered as ``name`` with the given options.

    Raises ConfigError naming the known attacks for an unknown name, and naming the
    option for one the technique does not take.
    """
    cls = ATTACKS.get(name)
    if cls is None:
        known = ", ".join(sorted(ATTACKS))
        raise ConfigError(f"unknown attack {name!r}; choose one of: {known}")
    try:
        return cls(**options)
    except TypeError as err:
        raise ConfigError(f"attack {name!r} does not take these options: {err}") from None


def list_attacks() -> list[type[Attack]]:
    """Registered attack classes, sorted by name."""
    return [ATTACKS[name] for name in sorted(ATTACKS)]


def fold_context(text: str, context: str | None) -> str:
    """``text`` with its supporting document, if any, placed before it.

    The document comes first and a rule separates it from the request, the layout HarmBench
    uses for contextual behaviors, so scores stay comparable with published ones.
    """
    if not context:
        return text
    return f"{context.strip()}\n\n---\n\n{text}"


def request_text(behavior: Behavior) -> str:
    """The full request of a behavior: its text, with the context document folded in."""
    return fold_context(behavior.text, behavior.context)


def behavior_rng(attack: str, seed: int, behavior: Behavior) -> random.Random:
    """A random generator fixed by (attack, seed, behavior id).

    Seeded from sha256 rather than ``hash()``, whose value changes between processes.
    """
    digest = hashlib.sha256(f"{attack}\x00{seed}\x00{behavior.id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def single_turn(text: str, **meta: Any) -> AttackPrompt:
    """An AttackPrompt of one user message, with ``meta`` as its details."""
    return AttackPrompt(messages=(Message(role="user", content=text),), meta=meta)


async def ask_helper(ctx: AttackContext, system: str, text: str, purpose: str) -> str:
    """The helper model's answer to ``text`` under ``system``, stripped.

    Raises ConfigError when no helper is configured and HelperError when its request fails
    or comes back empty; ``purpose`` names the transform in those messages.
    """
    if ctx.helper is None:
        raise ConfigError(f"{purpose} needs a helper model: pass --helper SPEC")
    conversation = [Message(role="system", content=system), Message(role="user", content=text)]
    [completion] = await ctx.helper.generate([conversation], ctx.params)
    if completion.error is not None:
        raise HelperError(f"{purpose} helper {ctx.helper.id} failed: {completion.error}")
    answer = completion.text.strip()
    if not answer:
        raise HelperError(f"{purpose} helper {ctx.helper.id} returned an empty answer")
    return answer
