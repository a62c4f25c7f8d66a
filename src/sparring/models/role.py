"""A model role: the spec string and the options of one model a run uses (the target, the
judge's model, the helper, the red model, and later the attacker and the guard)."""

from __future__ import annotations

from pydantic import Field

from sparring.models.options import ModelOptions
from sparring.types import Frozen

__all__ = ["ModelRole"]


class ModelRole(Frozen):
    """Which model plays a role and how to reach and run it."""

    spec: str = Field(description="Model spec, e.g. builtin/smollm2-135m (see models.spec).")
    options: ModelOptions = Field(
        default_factory=ModelOptions, description="Base URL, key variable, concurrency, ..."
    )
