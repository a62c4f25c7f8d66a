"""Model spec strings: ``provider/model``, the same in the CLI, configs and the API.

Known providers:

- ``builtin/NAME``: a model from the packaged zoo (``sparring models list``).
- ``llamacpp/PATH.gguf``: any GGUF file, run in-process by llama.cpp.
- ``openai/MODEL``: the OpenAI API (key from ``OPENAI_API_KEY``).
- ``openai-compatible/MODEL``: any server speaking the chat-completions protocol; needs
  ``base_url``. ``vllm/MODEL`` and ``ollama/MODEL`` are the same protocol with their usual
  local default URLs.
- ``hf/PATH_OR_NAME``: transformers, from a local folder, a GGUF file, or a hub name.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparring.errors import ModelNotFoundError

PROVIDERS = ("builtin", "llamacpp", "openai", "openai-compatible", "vllm", "ollama", "hf")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec string."""

    provider: str
    name: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.name}"


def parse_spec(spec: str) -> ModelSpec:
    """Split ``provider/model``; raise ModelNotFoundError naming the valid providers."""
    provider, sep, name = spec.strip().partition("/")
    if not sep or not name:
        raise ModelNotFoundError(
            f"model spec {spec!r} is not of the form provider/model "
            f"(providers: {', '.join(PROVIDERS)}; e.g. builtin/qwen2.5-coder-0.5b)"
        )
    if provider not in PROVIDERS:
        raise ModelNotFoundError(
            f"unknown model provider {provider!r} in {spec!r}; use one of: {', '.join(PROVIDERS)}"
        )
    return ModelSpec(provider, name)
