"""The config of ``sparring defend``: one target, the defenses to compare, and the prompts
they are compared on; shared by the CLI flags, YAML files and the API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, field_serializer, field_validator

from sparring.attacks import AttackChoice
from sparring.config_files import merge_fields, read_yaml, split_commas, validate_config
from sparring.defenses.registry import GuardChoice, Stack, parse_stack, stack_label, with_options
from sparring.errors import ConfigError
from sparring.judges import JudgeOptions
from sparring.judges.registry import DEFAULT_BAND
from sparring.models import ModelOptions
from sparring.redteam.config import DEFAULT_ATTACKER, ITERATIVE, Budgets
from sparring.registry import option_flags
from sparring.scan import DEFAULT_ATTACKS, DEFAULT_TARGET, ScanConfig, make_config
from sparring.types import Frozen

BASELINE = "none"
"""The label of the undefended arm: the target with no guard."""

DEFAULT_DEFENSES = ("self-reminder", "goal-priority", "input-classifier", "smoothllm:copies=3")
"""Compared when no defense is named: two prompt-side guards, a filter and a transform,
all cheap enough for a 2-core CPU."""


class DefendConfig(Frozen):
    """Everything that determines a defend run; stored with it so it can be resumed."""

    target: str = Field(DEFAULT_TARGET, description="Model spec of the model to defend.")
    target_options: ModelOptions = ModelOptions()
    system_prompt: str | None = Field(None, description="System prompt given to the target.")
    defenses: tuple[Stack, ...] = Field(
        tuple(parse_stack(text) for text in DEFAULT_DEFENSES),
        min_length=1,
        description="Defenses to compare, each a guard stack ('a+b:option=value'), a mapping "
        "{name: GUARD, OPTION: value}, or a list of those; a comma string lists several.",
    )
    suite: str = Field("builtin", description="Suite whose harmful behaviors are attacked.")
    benign_suites: tuple[str, ...] = Field(
        ("xstest", "jbb-benign"),
        min_length=1,
        description="Suites whose benign behaviors measure over-refusal.",
    )
    attacks: tuple[AttackChoice, ...] = Field(
        tuple(AttackChoice.model_validate(name) for name in DEFAULT_ATTACKS),
        min_length=1,
        description="Static techniques run against every defense.",
    )
    judge: str = Field("embedded", description="Judge spec that scores every reply.")
    judge_options: ModelOptions = Field(default_factory=ModelOptions)
    judge_band: tuple[float, float] = Field(DEFAULT_BAND, description="See ScanConfig.")
    samples: int = Field(1, ge=1, description="Target samples per attempt.")
    limit: int | None = Field(
        20, ge=1, description="At most this many harmful and this many benign behaviors."
    )
    max_tokens: int = Field(64, ge=1, description="Target reply length cap, tokens.")
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    seed: int = 0
    concurrency: int = Field(16, ge=1, description="Attempts in flight at once.")
    max_requests: int | None = Field(None, ge=1, description="Budget: attempts' requests.")
    time_limit_s: float | None = Field(None, gt=0, description="Budget: wall time, seconds.")
    alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="Family-wise error rate of the changes reported."
    )
    adaptive: tuple[str, ...] = Field(
        (),
        description="Red-team methods (pair, tap, crescendo, goat) also run against the "
        "undefended target and behind each defense; a comma string on the command line.",
    )
    attacker: str = Field(DEFAULT_ATTACKER, description="Adaptive: the attacker's model spec.")
    attacker_options: ModelOptions = ModelOptions()
    adaptive_limit: int | None = Field(
        None, ge=1, description="Adaptive: at most this many of the run's harmful behaviors."
    )
    adaptive_budgets: Budgets = Field(
        Budgets(), description="Adaptive: the red-team budgets, the same for every arm."
    )

    @field_validator("defenses", mode="before")
    @classmethod
    def _read_defenses(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, Sequence) or isinstance(value, str):
            return value
        return tuple(_stack(entry) for entry in value)

    @field_validator("defenses")
    @classmethod
    def _distinct(cls, value: tuple[Stack, ...]) -> tuple[Stack, ...]:
        labels = [stack_label(stack) for stack in value]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ConfigError(f"defense {repeated[0]} is listed twice; list each one once")
        return value

    @field_validator("benign_suites", "adaptive", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        return split_commas(value)

    @field_validator("attacks", mode="before")
    @classmethod
    def _split_attacks(cls, value: Any) -> Any:
        return split_commas(value)

    @field_validator("adaptive")
    @classmethod
    def _known_methods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in ITERATIVE:
                raise ValueError(
                    f"unknown red-team method {name!r}; use some of {', '.join(ITERATIVE)}"
                )
        if len(set(value)) != len(value):
            raise ValueError("a method is listed twice; list each one once")
        return value

    @field_validator("judge_band", mode="before")
    @classmethod
    def _split_band(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(","))
        return value

    @field_serializer("defenses")
    def _write_defenses(self, value: tuple[Stack, ...]) -> list[list[Any]]:
        return [[choice.model_dump(mode="json") for choice in stack] for stack in value]

    @property
    def labels(self) -> list[str]:
        """The arms of the run: the baseline, then each defense, as written in a spec."""
        return [BASELINE, *(stack_label(stack) for stack in self.defenses)]

    def judge_settings(self) -> JudgeOptions:
        """How the judge is built: its models' options and the escalation band."""
        return JudgeOptions(model=self.judge_options, band=self.judge_band)

    def scan_config(self) -> ScanConfig:
        """The scan settings the attempts are planned with (the same plan for every arm)."""
        fields = self.model_dump(
            mode="json",
            include={
                "target",
                "target_options",
                "system_prompt",
                "attacks",
                "judge",
                "samples",
                "limit",
                "max_tokens",
                "temperature",
                "seed",
                "concurrency",
            },
        )
        return make_config(fields, source="defend config")


def _stack(entry: Any) -> Stack:
    """One defenses entry as a stack: a stack string, one guard's mapping, or a list."""
    if isinstance(entry, str):
        return parse_stack(entry)
    if isinstance(entry, Mapping):
        return (GuardChoice.model_validate(entry),)
    if isinstance(entry, Sequence) and entry:
        return tuple(GuardChoice.model_validate(part) for part in entry)
    raise ConfigError(f"defense {entry!r}: write a guard stack, a guard mapping or a list")


def defend_config(
    fields: Mapping[str, Any],
    file: Any = None,
    *,
    defense_options: Sequence[str] = (),
    source: str | None = None,
) -> DefendConfig:
    """A validated defend config: ``fields`` over the YAML ``file``'s, then
    ``--defense-option NAME.OPTION=VALUE`` flags set on every defense using guard NAME
    (ConfigError when none does)."""
    values = merge_fields(read_yaml(file), dict(fields)) if file else dict(fields)
    where = source or (str(file) if file else "command line")
    config = validate_config(DefendConfig, values, where)
    options = option_flags(list(defense_options), "--defense-option")
    used = {choice.name for stack in config.defenses for choice in stack}
    for name in options:
        if name not in used:
            raise ConfigError(
                f"--defense-option {name}.…: no defense of the run uses guard {name}; add it "
                "to --defenses"
            )
    if not options:
        return config
    stacks = tuple(with_options(stack, options) for stack in config.defenses)
    return config.model_copy(update={"defenses": DefendConfig._distinct(stacks)})
