"""Model backends behind one async ChatModel interface, and the spec resolver."""

from __future__ import annotations

import os
from pathlib import Path

from sparring.errors import ConfigError, ModelNotFoundError
from sparring.models.base import ChatModel
from sparring.models.options import ModelOptions
from sparring.models.spec import PROVIDERS, ModelSpec, parse_spec

__all__ = ["PROVIDERS", "ChatModel", "ModelOptions", "ModelSpec", "parse_spec", "resolve_model"]

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "ollama": "http://127.0.0.1:11434/v1",
}
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY"}


def resolve_model(spec: str, options: ModelOptions | None = None) -> ChatModel:
    """Build the ChatModel a spec string names.

    Raises ModelNotFoundError for an unknown provider or model, MissingPackageError when
    the backend's optional dependencies are absent, ConfigError for missing settings.
    """
    opts = options or ModelOptions()
    parsed = parse_spec(spec)
    if parsed.provider in ("builtin", "llamacpp"):
        from sparring.models.llamacpp import LlamaCppModel

        return LlamaCppModel(
            _gguf(parsed),
            model_id=str(parsed),
            n_ctx=opts.n_ctx,
            n_threads=opts.n_threads,
            extra_buffers=opts.extra_buffers,
        )
    if parsed.provider == "hf":
        from sparring.models.hf import HFModel

        return HFModel.from_spec(parsed.name, model_id=str(parsed), device=opts.device)
    return _http_model(parsed, opts)


def _gguf(parsed: ModelSpec) -> Path:
    """The GGUF file a ``builtin`` or ``llamacpp`` spec names."""
    if parsed.provider == "builtin":
        from sparring.models import zoo

        return zoo.gguf_path(parsed.name)
    path = Path(parsed.name).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"llamacpp model file not found: {path}")
    return path


def _http_model(parsed: ModelSpec, opts: ModelOptions) -> ChatModel:
    from sparring.models.openai_http import OpenAICompatibleModel

    base_url = opts.base_url or DEFAULT_BASE_URLS.get(parsed.provider)
    if base_url is None:
        raise ConfigError(f"{parsed} needs a server address: pass --base-url http://HOST:PORT/v1")
    key_env = opts.api_key_env or DEFAULT_KEY_ENV.get(parsed.provider)
    api_key = os.environ.get(key_env) if key_env else None
    if parsed.provider == "openai" and not api_key:
        raise ConfigError(f"{parsed} needs an API key in the environment variable {key_env}")
    return OpenAICompatibleModel(
        parsed.name,
        model_id=str(parsed),
        base_url=base_url,
        api_key=api_key,
        api_key_env=key_env,
        max_concurrency=opts.max_concurrency,
        requests_per_second=opts.requests_per_second,
        timeout_s=opts.timeout_s,
        max_retries=opts.max_retries,
    )


def known_model(spec: str) -> bool:
    """True when the spec parses and, for builtin models, names a zoo entry."""
    try:
        parsed = parse_spec(spec)
    except ModelNotFoundError:
        return False
    if parsed.provider != "builtin":
        return True
    from sparring.models import zoo

    return parsed.name in zoo.ZOO
