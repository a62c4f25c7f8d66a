"""Model backends behind one async ChatModel interface, and the spec resolver.

Each provider registers its builder in its own module (see ``backends``);
``resolve_model`` looks the provider of a spec up and builds the model.
"""

from __future__ import annotations

from sparring.models.backends import Backend, backend, backends, get_backend, providers
from sparring.models.base import ChatModel
from sparring.models.options import Adapter, ModelOptions
from sparring.models.role import ModelRole
from sparring.models.spec import ModelSpec, parse_spec

__all__ = [
    "Adapter",
    "Backend",
    "ChatModel",
    "ModelOptions",
    "ModelRole",
    "ModelSpec",
    "backend",
    "backends",
    "get_backend",
    "parse_spec",
    "providers",
    "resolve_model",
]


def resolve_model(spec: str | ModelRole, options: ModelOptions | None = None) -> ChatModel:
    """Build the ChatModel a spec string (with ``options``) or a ModelRole names.

    The provider's default base URL and key variable fill in what the options leave unset.
    Raises ModelNotFoundError for an unknown provider or model, MissingPackageError when
    the backend's optional dependencies are absent, ConfigError for missing settings.
    """
    if isinstance(spec, ModelRole):
        if options is not None:
            raise TypeError("resolve_model takes options with a spec string, not a ModelRole")
        return resolve_model(spec.spec, spec.options)
    parsed = parse_spec(spec)
    entry = get_backend(parsed.provider)
    opts = options or ModelOptions()
    defaults = {
        "base_url": opts.base_url or entry.base_url,
        "api_key_env": opts.api_key_env or entry.key_env,
    }
    return entry.build(parsed, opts.model_copy(update=defaults))
