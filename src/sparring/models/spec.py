"""Model spec strings: ``provider/model``, one grammar in the CLI, configs and the API.

The provider is everything before the first ``/``; the rest, slashes and all, is the model
it names. sparring's own providers:

- ``builtin/NAME``: a model from the packaged zoo (``sparring models list``), run by
  llama.cpp.
- ``llamacpp/PATH.gguf``: any GGUF file, run in-process by llama.cpp.
- ``hf/PATH_OR_NAME``: transformers, from a local folder, a GGUF file or a hub name;
  ``hf/builtin/NAME`` loads the zoo model ``NAME`` in transformers (dequantised), the
  same weights ``builtin/NAME`` runs in llama.cpp.
- ``openai/MODEL``: the OpenAI API (key from ``OPENAI_API_KEY``).
- ``openai-compatible/MODEL``: any server speaking the chat-completions protocol; needs
  ``base_url``. ``vllm/MODEL`` and ``ollama/MODEL`` are the same protocol with their usual
  local default URLs.

More providers register with ``sparring.models.backends.backend`` (see there).
"""

from __future__ import annotations

from sparring.errors import ModelNotFoundError
from sparring.models.backends import ModelSpec, providers

__all__ = ["ModelSpec", "parse_spec"]


def parse_spec(spec: str) -> ModelSpec:
    """Split ``provider/model``; raise ModelNotFoundError naming the valid providers."""
    provider, sep, name = spec.strip().partition("/")
    known = providers()
    if not sep or not name:
        raise ModelNotFoundError(
            f"model spec {spec!r} is not of the form provider/model "
            f"(providers: {', '.join(known)}; e.g. builtin/qwen2.5-coder-0.5b)"
        )
    if provider not in known:
        raise ModelNotFoundError(
            f"unknown model provider {provider!r} in {spec!r}; use one of: {', '.join(known)}"
        )
    return ModelSpec(provider, name)
