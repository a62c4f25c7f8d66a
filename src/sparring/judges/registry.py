"""The judge registry: each form of the judge spec grammar is one decorated builder.

A form is the word a spec starts with (``rules``, ``embedded``, ``harmbench``, ``escalate``
...), optionally followed by its separator and an argument (``embedded@HEAD.npz``,
``harmbench:MODEL``, ``escalate:A,B``). A module adds a form with::

    @judge_form("always-safe", usage="always-safe")
    def build_always_safe(argument: str | None, build: JudgeBuild) -> Judge:
        return AlwaysSafeJudge()

``JudgeBuild.judge`` turns a spec into a judge by looking its form up here; the built-in
forms register when ``sparring.judges.resolve`` is imported, plugins as described in
``sparring.registry``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field

from sparring.errors import ConfigError
from sparring.judges.base import Judge
from sparring.models.base import ChatModel
from sparring.models.options import ModelOptions
from sparring.registry import Registry
from sparring.types import Frozen

DEFAULT_BAND = (0.2, 0.8)
"""p_unsafe range (inclusive, probabilities) within which escalation asks the second judge."""


class JudgeOptions(Frozen):
    """Settings for building judges from spec strings."""

    model: ModelOptions = Field(
        default_factory=ModelOptions, description="Options for judge models (base_url ...)."
    )
    band: tuple[float, float] = Field(
        DEFAULT_BAND, description="Escalation band of p_unsafe (probabilities, inclusive)."
    )
    max_tokens: int | None = Field(
        None, ge=1, description="Judge reply budget in tokens; None keeps each rubric's own."
    )
    seed: int = Field(0, description="Sampling seed sent with judge requests.")


Builder = Callable[[str | None, "JudgeBuild"], Judge]
"""``(argument, build) -> Judge``; the argument is the text after the form's separator,
None when the spec is the bare form name."""


@dataclass(frozen=True)
class JudgeForm:
    """A registered judge form."""

    name: str
    build: Builder
    usage: str
    """How the form is written, e.g. ``harmbench:MODEL``; listed in errors."""
    separator: str | None = ":"
    """The character between the name and the argument; None for a form without one."""


JUDGE_FORMS: Registry[JudgeForm] = Registry("judge")
"""Every judge form by name (the word a spec starts with)."""

_NAME = re.compile(r"[A-Za-z][\w.-]*")


def judge_form(
    name: str, *, usage: str | None = None, separator: str | None = ":"
) -> Callable[[Builder], Builder]:
    """Decorator: register a builder of the judges whose spec starts with ``name``.

    ``usage`` (default: ``name``) shows how the form is written; ``separator`` is the
    character that introduces its argument (None: the form takes none).
    """

    def add(build: Builder) -> Builder:
        JUDGE_FORMS.register(name)(JudgeForm(name, build, usage or name, separator))
        return build

    return add


def valid_forms() -> str:
    """Every registered form's usage, joined for an error message."""
    return " | ".join(form.usage for _, form in JUDGE_FORMS.items())


class JudgeBuild:
    """One resolution of a judge spec: its options, and the judge models it has made so far,
    one per distinct model spec (a judge that made its model closes it)."""

    def __init__(self, spec: str, options: JudgeOptions) -> None:
        self.spec = spec
        """The whole spec being resolved, for error messages."""
        self.options = options
        self._models: dict[str, ChatModel] = {}

    def judge(self, text: str) -> Judge:
        """The judge ``text`` (the whole spec or one member of it) names; ConfigError
        listing the registered forms when it names none."""
        text = text.strip()
        match = _NAME.match(text)
        name = match[0] if match else ""
        rest = text[len(name) :]
        form = JUDGE_FORMS.get(name) if name in JUDGE_FORMS else None
        if form is None or (rest and rest[0] != form.separator):
            raise ConfigError(f"unknown judge spec {self.spec!r}; valid forms: {valid_forms()}")
        return form.build(rest[1:] if rest else None, self)

    def model(self, spec: str) -> tuple[ChatModel, bool]:
        """The judge model for a model spec, and whether this call created it (then the
        judge using it owns and closes it)."""
        from sparring.models import resolve_model

        key = spec.strip()
        owns = key not in self._models
        if owns:
            self._models[key] = resolve_model(key, self.options.model)
        return self._models[key], owns
