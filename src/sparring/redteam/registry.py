"""The iterative methods by name: each module registers its episode runner with
``@method``, so adding a method is adding one file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sparring.redteam.episode import Episode
from sparring.registry import Registry

MethodRun = Callable[[Episode], Awaitable[None]]
"""Runs a method on an episode's behavior until it succeeds or its budget is spent."""

METHODS: Registry[MethodRun] = Registry("red-team method")
"""Every iterative method; filled by importing ``sparring.redteam``."""


def method(name: str) -> Callable[[MethodRun], MethodRun]:
    """Decorator: register an episode runner as the method ``name``."""
    return METHODS.register(name)
