"""Backend settings that a user may pass along with a spec string."""

from __future__ import annotations

from pydantic import Field

from sparring.types import Frozen


class Adapter(Frozen):
    """A LoRA adapter GGUF applied on top of a llama.cpp model's base weights."""

    path: str = Field(description="The adapter GGUF file (e.g. from sparring.train).")
    scale: float = Field(1.0, description="Weight of the adapter; 1.0 applies it as trained.")


class ModelOptions(Frozen):
    """Settings for building a ChatModel; each backend reads the fields that apply to it."""

    base_url: str | None = Field(None, description="Server root for HTTP providers.")
    api_key_env: str | None = Field(
        None, description="Environment variable holding the API key (never the key itself)."
    )
    max_concurrency: int = Field(
        16,
        ge=1,
        description=(
            "Requests in flight at most (HTTP backends). A scan's target gets the scan's "
            "--concurrency here unless this is set."
        ),
    )
    requests_per_second: float | None = Field(
        None, gt=0, description="Request rate limit for HTTP providers; None for none."
    )
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout, seconds.")
    max_retries: int = Field(4, ge=0, description="Retries on 429, 5xx and connection errors.")
    n_ctx: int = Field(4096, ge=256, description="Context window for local models, tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for local models.")
    extra_buffers: bool = Field(
        False,
        description=(
            "Let llama.cpp repack weights for CPU-specific kernels (its extra buffer types): "
            "faster on some CPUs, but llama-cpp-python 0.3.36 crashes with it on Intel AMX."
        ),
    )
    device: str = Field("auto", description="Device for transformers models: auto, cpu, cuda.")
    adapters: tuple[Adapter, ...] = Field(
        (), description="LoRA adapters for llama.cpp models (builtin/, llamacpp/), in order."
    )
