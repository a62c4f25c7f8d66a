"""The guard registry, and how a guard stack is written.

A stack is guards joined by ``+``, outermost first; a guard is its name, optionally with
options after colons::

    self-reminder
    input-classifier+self-reminder
    smoothllm:copies=5:rate=0.1+sandwich

In a model spec (``defended/STACK/PROVIDER/MODEL``) an option value cannot hold ``/``,
``+``, ``:`` or ``,``; YAML (``{name: smoothllm, copies: 5}``) and ``--defense-option
NAME.OPTION=VALUE`` take any value.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, model_serializer, model_validator

from sparring.errors import ConfigError
from sparring.registry import Registry, parse_options
from sparring.types import Frozen

if TYPE_CHECKING:
    from sparring.defenses.base import Guard
    from sparring.defenses.kit import GuardKit

GUARDS: Registry[type[Guard[Any]]] = Registry("guard")
"""Every registered guard by name; the built-in ones are in ``sparring.defenses.guards``."""

G = TypeVar("G", bound="type[Guard[Any]]")

_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def register(cls: G) -> G:
    """Class decorator that adds a Guard subclass to GUARDS under its ``name``."""
    if not _KEBAB.match(cls.name):
        raise ValueError(f"guard name {cls.name!r} must be kebab-case")
    GUARDS.register(cls.name)(cls)
    return cls


@cache
def _load_builtin() -> None:
    from sparring.defenses import guards

    for module in pkgutil.iter_modules(guards.__path__):
        importlib.import_module(f"{guards.__name__}.{module.name}")


def guard_class(name: str) -> type[Guard[Any]]:
    """The guard registered as ``name``; ConfigError listing the known guards if none."""
    _load_builtin()
    return GUARDS.get(name)


def guard_classes() -> list[type[Guard[Any]]]:
    """Every registered guard, sorted by name (plugins' included)."""
    _load_builtin()
    return [cls for _, cls in GUARDS.items()]


class GuardChoice(Frozen):
    """A guard as a stack names it: its name and the options set for it.

    Validates from ``"name"``, ``"name:option=value:..."`` or a mapping ``{"name": ...,
    OPTION: VALUE}``; written back as a bare name when no option is set. An unknown guard
    or option, or a bad value, is one ConfigError line.
    """

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_text_or_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _parse_guard(value)
        if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
            raise ValueError("name a guard, or give a mapping with its name and options")
        values = dict(value)
        name = values.pop("name").strip()
        options = {**values.pop("options", {}), **values}
        parsed = parse_options(guard_class(name).Options, options, f"guard {name}")
        return {"name": name, "options": parsed.model_dump(mode="json", exclude_unset=True)}

    @model_serializer
    def _as_name_or_mapping(self) -> str | dict[str, Any]:
        return {"name": self.name, **self.options} if self.options else self.name

    @property
    def label(self) -> str:
        """``name`` or ``name:option=value:...`` (options sorted), as a spec writes it."""
        parts = [self.name, *(f"{k}={_text(v)}" for k, v in sorted(self.options.items()))]
        return ":".join(parts)

    def build(self, kit: GuardKit) -> Guard[Any]:
        """The guard with these options, sharing ``kit``."""
        cls = guard_class(self.name)
        return cls(parse_options(cls.Options, self.options, f"guard {self.name}"), kit)


Stack = tuple[GuardChoice, ...]
"""Guards in order, outermost (first to see a request) first."""


def parse_stack(text: str) -> Stack:
    """The guards of ``a+b:opt=v``; ConfigError (one line) for an empty or unknown one."""
    parts = [p.strip() for p in text.split("+")]
    if not text.strip() or not all(parts):
        raise ConfigError(
            f"guard stack {text!r} is empty or has an empty part; write GUARD[+GUARD...], "
            "e.g. self-reminder+input-classifier"
        )
    return tuple(GuardChoice.model_validate(part) for part in parts)


def stack_label(stack: Sequence[GuardChoice]) -> str:
    """The stack as written in a spec: labels joined by ``+``; ``none`` for no guard."""
    return "+".join(choice.label for choice in stack) or "none"


def with_options(stack: Stack, options: Mapping[str, Mapping[str, Any]]) -> Stack:
    """``stack`` with ``options[guard]`` set on every guard of that name."""
    return tuple(
        GuardChoice.model_validate({"name": c.name, **c.options, **options.get(c.name, {})})
        for c in stack
    )


def _parse_guard(text: str) -> dict[str, Any]:
    """``name:option=value:...`` as a mapping; ConfigError for a malformed option."""
    name, *pairs = text.strip().split(":")
    values: dict[str, Any] = {"name": name.strip()}
    for pair in pairs:
        option, sep, value = pair.partition("=")
        if not sep or not option.strip():
            raise ConfigError(
                f"guard {text!r}: write its options as NAME:OPTION=VALUE[:OPTION=VALUE...]"
            )
        values[option.strip()] = value.strip()
    return values


def _text(value: Any) -> str:
    """An option value as a spec writes it (booleans in lower case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
