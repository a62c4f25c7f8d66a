"""Plugin registries: backends, judges, attacks, behavior loaders (and the defenses and
red-team methods to come) each register with a decorator, so adding one is one file.

A plugin may take typed options: a pydantic model whose fields are the options, settable
from YAML (``attacks: [{name: translation, language: zu}]``) and from the command line
(``--attack-option translation.language=zu``). Unknown names and options give one line
that lists what exists.

Plugins outside sparring are found through the ``sparring.plugins`` entry-point group and
the ``SPARRING_PLUGINS`` environment variable (comma-separated module names); importing
such a module runs its decorators.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from sparring.errors import ConfigError

T = TypeVar("T")
OptionsT = TypeVar("OptionsT", bound=BaseModel)

PLUGINS_ENV = "SPARRING_PLUGINS"
"""Environment variable naming extra plugin modules to import, comma-separated."""


class NoOptions(BaseModel):
    """The options of a plugin that takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Registry(Generic[T]):
    """Named plugins of one kind (``kind`` is the noun used in messages, e.g. "attack")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (unique per registry)."""

        def add(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        """The plugin called ``name``; ConfigError listing the known names if none."""
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; use one of: {known}") from None

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        load_plugins()
        return iter(sorted(self._entries))

    def items(self) -> list[tuple[str, T]]:
        """Every (name, plugin), sorted by name."""
        load_plugins()
        return sorted(self._entries.items())


def parse_options(model: type[OptionsT], values: Mapping[str, Any], where: str) -> OptionsT:
    """Validate a plugin's options; the first bad one becomes one ConfigError line.

    ``where`` names the plugin in the message, e.g. "attack translation".
    """
    fields = model.model_fields
    unknown = sorted(set(values) - set(fields))
    if unknown:
        valid = ", ".join(fields) or "none"
        raise ConfigError(f"{where} has no option {unknown[0]!r}; its options: {valid}")
    try:
        return model.model_validate(dict(values))
    except ValidationError as err:
        first = err.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where} option {name!r}: {first['msg']}") from None


def option_flags(flags: list[str], flag: str) -> dict[str, dict[str, str]]:
    """``["translation.language=zu", ...]`` as ``{"translation": {"language": "zu"}}``;
    ``flag`` names the command-line flag in the error for a malformed entry."""
    options: dict[str, dict[str, str]] = {}
    for item in flags:
        target, _, value = item.partition("=")
        plugin, _, option = target.partition(".")
        if not (plugin and option and _):
            raise ConfigError(f"{flag} {item!r}: write it as NAME.OPTION=VALUE")
        options.setdefault(plugin.strip(), {})[option.strip()] = value
    return options


@cache
def load_plugins() -> tuple[str, ...]:
    """Import the plugin modules named by entry points and ``SPARRING_PLUGINS``, once;
    returns their names. A module that cannot be imported is a ConfigError."""
    names = [e.value for e in entry_points(group="sparring.plugins")]
    names += [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    for module in names:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(
                f"plugin module {module!r} (from {PLUGINS_ENV} or an entry point) cannot be "
                f"imported: {err}"
            ) from None
    return tuple(names)
