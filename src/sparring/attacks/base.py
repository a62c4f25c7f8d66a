"""The Attack interface, the registry of techniques, and helpers every technique shares.

An attack turns a Behavior into one or more AttackPrompts: the messages sent first and the
user turns that follow. Realisations are pure functions of (attack, options, seed, behavior
id) plus, for model-driven transforms, the helper model's answers, so a re-run plans the
same attempts and the store's content keys match.

A model-driven transform works in two steps, so that its helper calls are engine attempts
(stored, budgeted, cached, resumed) rather than calls of its own: ``helper_requests`` says
what it needs to ask the helper, and ``realize`` reads the answers from
``AttackContext.answers``.
"""

from __future__ import annotations

import hashlib
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, Field, model_serializer, model_validator

from sparring.errors import EXIT_MODEL, ConfigError, SparringError
from sparring.registry import NoOptions, Registry, parse_options
from sparring.types import Behavior, Completion, Frozen, Message

FAMILIES: tuple[str, ...] = (
    "baseline",
    "jailbreak.template",
    "jailbreak.competing-objectives",
    "jailbreak.scenario",
    "jailbreak.encoding",
    "jailbreak.multilingual",
    "jailbreak.in-context",
    "jailbreak.decomposition",
    "injection.direct",
    "injection.indirect",
    "extraction.system-prompt",
    "extraction.training-data",
    "energy-latency",
)
"""Taxonomy ids an attack's ``family`` may take: jailbreaks (TAXONOMY.md section 1.1),
direct and indirect prompt injection and system-prompt extraction (2.1), training-data
extraction (6) and energy-latency (5)."""

Access = Literal["black-box", "white-box"]

_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

OptionsT = TypeVar("OptionsT", bound=BaseModel)


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


class HelperRequest(Frozen):
    """One call to the helper model that a transform needs before it can realise a prompt.

    The scan runs these as engine attempts; ``realize`` then finds the answer under the
    same request in ``AttackContext.answers``.
    """

    purpose: str = Field(description="The transform asking, for messages: 'translation'.")
    messages: tuple[Message, ...] = Field(min_length=1)


@dataclass(frozen=True)
class AttackContext:
    """What a realisation may draw on besides the behavior."""

    seed: int = 0
    """Run seed; with the behavior id it fixes every random choice of a technique."""
    helper_id: str | None = None
    """Id of the helper model for model-driven transforms; None when the scan has none."""
    answers: Mapping[HelperRequest, Completion] = field(default_factory=dict)
    """The helper's completions of the requests that ``helper_requests`` returned."""
    system_prompt: str | None = None
    """The scan's system prompt (``--system-prompt``); attacks on an application use it as
    the application's instructions instead of their built-in ones."""


class Attack(ABC, Generic[OptionsT]):
    """A jailbreak technique: Behavior -> AttackPrompts.

    Subclasses set the class attributes, including ``Options`` (the pydantic model of the
    technique's options; NoOptions when it takes none), and implement ``realize``;
    ``@register`` makes them available by name.
    """

    name: ClassVar[str]
    """Registry key, kebab-case, e.g. ``prefix-injection``."""
    family: ClassVar[str]
    """Taxonomy id from FAMILIES, e.g. ``jailbreak.encoding``."""
    description: ClassVar[str]
    """One line for catalogue listings."""
    needs_helper: ClassVar[bool] = False
    """True when ``realize`` cannot run without a helper model."""
    access: ClassVar[Access] = "black-box"
    """What the technique needs of the target: chat text only, or weights and gradients."""
    checked: ClassVar[bool] = False
    """True when its prompts carry an exact check (``meta['check']``, see
    ``sparring.judges.exact``) that decides success instead of the scan's judge."""
    Options: ClassVar[type[BaseModel]] = NoOptions
    """The technique's options, settable from YAML and ``--attack-option NAME.OPTION=V``."""

    def __init__(self, options: OptionsT | None = None) -> None:
        self.options: OptionsT = cast(OptionsT, self.Options()) if options is None else options

    def helper_requests(self, behavior: Behavior, ctx: AttackContext) -> list[HelperRequest]:
        """The helper calls ``realize`` will need for ``behavior``; none by default."""
        return []

    @abstractmethod
    async def realize(self, behavior: Behavior, ctx: AttackContext) -> list[AttackPrompt]:
        """Turn ``behavior`` into AttackPrompts, deterministically for a seed.

        At least one, except for a model-driven transform whose helper request has no
        answer yet (a run stopped by its budget): then none.
        """


ATTACKS: Registry[type[Attack[Any]]] = Registry("attack")
"""Every registered technique by name; filled by importing ``sparring.attacks``."""

A = TypeVar("A", bound=type[Attack[Any]])


def register(cls: A) -> A:
    """Class decorator that adds an Attack subclass to ATTACKS under its ``name``."""
    name = cls.name
    if not _KEBAB.match(name):
        raise ValueError(f"attack name {name!r} must be kebab-case")
    if cls.family not in FAMILIES:
        raise ValueError(f"attack {name!r} has unknown family {cls.family!r}")
    ATTACKS.register(name)(cls)
    return cls


def get_attack(name: str, **options: Any) -> Attack[Any]:
    """Build the attack registered as ``name`` with the given options.

    Raises ConfigError naming the known attacks for an unknown name, and naming the
    option for one the technique does not take or a bad value.
    """
    cls = ATTACKS.get(name)
    return cls(parse_options(cls.Options, options, f"attack {name}"))


def list_attacks() -> list[type[Attack[Any]]]:
    """Registered attack classes, sorted by name."""
    return [cls for _, cls in ATTACKS.items()]


class AttackChoice(Frozen):
    """An attack as a scan names it: its registry name and the options set for it.

    Validates from a name (``"base64"``) or a mapping (``{"name": "translation",
    "language": "zu"}``) and is written back the same way, a bare name when no option is
    set. An unknown attack or option, or a bad value, is one ConfigError line.
    """

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name_or_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"name": value.strip()}
        if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
            raise ValueError("name an attack, or give a mapping with its name and options")
        values = dict(value)
        name = values.pop("name")
        options = {**values.pop("options", {}), **values}
        parsed = parse_options(ATTACKS.get(name).Options, options, f"attack {name}")
        return {"name": name, "options": parsed.model_dump(mode="json", exclude_unset=True)}

    @model_serializer
    def _as_name_or_mapping(self) -> str | dict[str, Any]:
        return {"name": self.name, **self.options} if self.options else self.name

    def build(self) -> Attack[Any]:
        """The attack with these options."""
        return get_attack(self.name, **self.options)


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


def helper_request(system: str, text: str, purpose: str) -> HelperRequest:
    """The request asking the helper to answer ``text`` under the instructions ``system``;
    ``purpose`` names the transform in error messages."""
    messages = (Message(role="system", content=system), Message(role="user", content=text))
    return HelperRequest(purpose=purpose, messages=messages)


def helper_answer(ctx: AttackContext, request: HelperRequest) -> str | None:
    """The helper's answer to ``request``, stripped; None when it has not been asked yet.

    Raises ConfigError when the scan has no helper, and HelperError when the request failed
    or came back empty: a transform never silently falls back to something else.
    """
    if ctx.helper_id is None:
        raise ConfigError(f"{request.purpose} needs a helper model: pass --helper SPEC")
    completion = ctx.answers.get(request)
    if completion is None:
        return None
    if completion.error is not None:
        raise HelperError(f"{request.purpose} helper {ctx.helper_id} failed: {completion.error}")
    answer = completion.text.strip()
    if not answer:
        raise HelperError(f"{request.purpose} helper {ctx.helper_id} returned an empty answer")
    return answer
