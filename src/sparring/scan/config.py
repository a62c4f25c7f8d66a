"""Scan configuration: one pydantic model shared by the CLI flags, YAML files and the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from sparring.config_files import merge_fields, read_yaml, validate_config
from sparring.models.options import ModelOptions
from sparring.types import Frozen

DEFAULT_TARGET = "builtin/qwen2.5-coder-0.5b"
# A spread of families that the default scan runs: the baseline, a persona template, two
# competing-objective tricks, a nested scenario and an encoding. Sized, with the limit and
# reply length below, so the default scan of the embedded target ends within 10 minutes on
# a 2-core CPU.
DEFAULT_ATTACKS = (
    "direct",
    "roleplay-persona",
    "refusal-suppression",
    "prefix-injection",
    "fictional-scenario",
    "base64",
)


class ScanConfig(Frozen):
    """Everything that determines a scan; stored with the run so it can be resumed."""

    target: str = Field(DEFAULT_TARGET, description="Model spec of the model under test.")
    target_options: ModelOptions = ModelOptions()
    system_prompt: str | None = Field(None, description="System prompt given to the target.")
    suite: str = Field("builtin", description="Named behavior suite (sparring data).")
    behaviors: str | None = Field(
        None, description="Behavior file, URL or hf:// path; replaces the suite when set."
    )
    behaviors_format: str | None = Field(
        None, description="Loader for --behaviors (csv, jsonl, advbench, ...); None: detect it."
    )
    columns: dict[str, str] | str | None = Field(
        None,
        description="Column mapping for --behaviors: role -> column, or text=prompt,id=id,...",
    )
    attacks: tuple[str, ...] = Field(DEFAULT_ATTACKS, min_length=1)
    templates_file: str | None = Field(None, description="Templates for the template-file attack.")
    judge: str = Field("embedded", description="Judge spec, e.g. embedded, rules, harmbench:MODEL.")
    helper: str | None = Field(None, description="Helper model spec for translation attacks.")
    samples: int = Field(1, ge=1, description="Target samples per attempt.")
    limit: int | None = Field(
        20, ge=1, description="At most this many harmful and this many benign behaviors."
    )
    max_tokens: int = Field(64, ge=1, description="Target reply length cap, tokens.")
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    seed: int = 0
    concurrency: int = Field(16, ge=1, description="Attempts in flight at once.")
    max_requests: int | None = Field(None, ge=1, description="Budget: target requests.")
    time_limit_s: float | None = Field(None, gt=0, description="Budget: wall time, seconds.")

    @field_validator("attacks", mode="before")
    @classmethod
    def _split_attacks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(a.strip() for a in value.split(",") if a.strip())
        return value


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> ScanConfig:
    """Read a YAML scan config, apply overrides, and validate it. An override that is a
    mapping (``target_options``) is merged into the file's, field by field."""
    return make_config(merge_fields(read_yaml(path), overrides or {}), source=str(path))


def make_config(values: dict[str, Any], source: str = "scan options") -> ScanConfig:
    """Validate a dict of scan fields."""
    return validate_config(ScanConfig, values, source)
