"""The ``defended`` model provider: ``defended/STACK/SPEC`` is the model ``SPEC`` behind the
guards of ``STACK``, so every command that takes a model spec (scan, chat, red-teaming)
runs a defended target without a flag of its own::

    sparring scan --target defended/self-reminder+input-classifier/builtin/qwen2.5-coder-0.5b
    sparring chat defended/smoothllm:copies=3/openai-compatible/m "Hi" --base-url URL

The model options (base URL, key variable, concurrency ...) are the inner model's; guards
that classify use their judge with default judge options. The models layer imports this
module by name on its first provider lookup (``sparring.models.backends``), as it does a
plugin's.
"""

from __future__ import annotations

from sparring.defenses.registry import parse_stack
from sparring.errors import ModelNotFoundError
from sparring.models.backends import ModelSpec, backend
from sparring.models.base import ChatModel
from sparring.models.options import ModelOptions

USAGE = "defended/GUARD[+GUARD...]/PROVIDER/MODEL, e.g. defended/self-reminder/builtin/smollm2-135m"


@backend("defended", description="any model spec behind guards: defended/GUARDS/SPEC")
def build_defended(spec: ModelSpec, options: ModelOptions) -> ChatModel:
    """The inner model of ``spec.name`` (``STACK/SPEC``) behind the stack's guards."""
    from sparring.defenses.kit import GuardKit
    from sparring.defenses.model import DefendedModel
    from sparring.models import resolve_model

    stack_text, sep, inner = spec.name.partition("/")
    if not sep or "/" not in inner:
        raise ModelNotFoundError(f"model spec {str(spec)!r} is not of the form {USAGE}")
    stack = parse_stack(stack_text)
    target = resolve_model(inner, options)
    return DefendedModel(GuardKit(target, model_options=options), stack, owns=True)
