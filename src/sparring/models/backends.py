"""The backend registry: each model provider (the ``builtin`` of ``builtin/NAME``) registers
a builder with ``@backend`` in its own module.

A builder takes the parsed spec and the ModelOptions, with the backend's default base URL
and key variable already filled in, and returns a ChatModel. sparring's own backends live
in ``llamacpp.py``, ``hf.py`` and ``openai_http.py`` and are imported on the first lookup;
a backend outside sparring is one module with a decorated builder, named in the
``SPARRING_PLUGINS`` environment variable or a ``sparring.plugins`` entry point.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from sparring.models.base import ChatModel
from sparring.models.options import ModelOptions
from sparring.registry import Registry

__all__ = [
    "BACKENDS",
    "Backend",
    "Builder",
    "ModelSpec",
    "backend",
    "backends",
    "get_backend",
    "providers",
]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec string (see ``sparring.models.spec`` for the grammar)."""

    provider: str
    name: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.name}"


Builder = Callable[[ModelSpec, ModelOptions], ChatModel]
"""Builds a ChatModel from a parsed spec and its options; raises SparringError subclasses
(ModelNotFoundError, MissingPackageError, ConfigError) for a model that cannot be built."""

B = TypeVar("B", bound=Builder)


@dataclass(frozen=True)
class Backend:
    """One model provider: its builder and the defaults it brings."""

    name: str
    """The provider, the part of a spec before the first ``/``."""
    build: Builder
    description: str
    """One line for ``sparring models list``."""
    base_url: str | None = None
    """Server root used when the options give none (HTTP providers)."""
    key_env: str | None = None
    """Environment variable read for the API key when the options name none."""
    local: bool = False
    """True for in-process backends (weights on this machine, no endpoint to check)."""


BACKENDS: Registry[Backend] = Registry("model provider")
"""Every registered provider; look one up with ``get_backend``."""

_BUILTIN_MODULES = (
    "sparring.models.llamacpp",
    "sparring.models.hf",
    "sparring.models.openai_http",
    # ``defended/GUARDS/SPEC``: guards around any model. It lives with the guards, above
    # the judges they classify with, and registers here by name as a plugin does.
    "sparring.defenses.provider",
)


def backend(
    name: str,
    *,
    description: str,
    base_url: str | None = None,
    key_env: str | None = None,
    local: bool = False,
) -> Callable[[B], B]:
    """Decorator: register the decorated builder as provider ``name``. Stack it to register
    one builder under several providers with different defaults."""

    def add(build: B) -> B:
        BACKENDS.register(name)(Backend(name, build, description, base_url, key_env, local))
        return build

    return add


@cache
def _load_builtin() -> None:
    # Imported on first lookup, not with sparring.models: aiohttp and jinja2 cost import
    # time that most commands never need.
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def get_backend(provider: str) -> Backend:
    """The backend registered as ``provider``; ConfigError listing the known ones if none."""
    _load_builtin()
    return BACKENDS.get(provider)


def providers() -> tuple[str, ...]:
    """Every registered provider name, sorted."""
    _load_builtin()
    return tuple(BACKENDS)


def backends() -> list[Backend]:
    """Every registered backend, sorted by provider name (for ``sparring models list``)."""
    _load_builtin()
    return [entry for _, entry in BACKENDS.items()]
