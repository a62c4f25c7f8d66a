"""Red-team configuration: one pydantic model shared by the CLI flags, YAML files and the API.

The budgets have our defaults, sized so that every method spends at most ``queries`` target
queries per behavior (20, the budget PAIR's paper reports its mean cost against); the
published settings differ and are listed in the README (PAIR: 20 streams × 3 iterations;
TAP: width 10, depth 10, branching 4; Crescendo: 10 turns, 10 backtracks; GOAT: 5 turns).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sparring.attacks import ATTACKS
from sparring.config_files import merge_fields, read_yaml, split_commas, validate_config
from sparring.errors import ConfigError
from sparring.judges.registry import JudgeOptions
from sparring.judges.resolve import DEFAULT_JUDGE
from sparring.models.options import ModelOptions
from sparring.registry import option_flags
from sparring.scan.config import DEFAULT_ATTACKS, DEFAULT_TARGET, ScanConfig
from sparring.types import Frozen

DEFAULT_ATTACKER = "builtin/qwen2.5-coder-0.5b"
ITERATIVE = ("pair", "tap", "crescendo", "goat")
"""The methods driven by an attacker model, in the order they are run and reported."""
ADAPTIVE = "adaptive"
"""The bandit campaign over the scan's static techniques and the iterative methods."""
ROLES = ("target", "attacker", "judge")
"""The model roles of a red-team run; each has its ``ROLE_options`` field."""


class Budgets(Frozen):
    """How far each method may go for one behavior; every count is per behavior."""

    queries: int = Field(20, ge=1, description="Target queries per behavior and method.")
    streams: int = Field(5, ge=1, description="PAIR: independent refinement streams.")
    depth: int = Field(4, ge=1, description="PAIR: iterations per stream; TAP: tree depth.")
    width: int = Field(3, ge=1, description="TAP: leaves kept after scoring, per depth.")
    branching: int = Field(2, ge=1, description="TAP: children written per leaf.")
    turns: int = Field(10, ge=1, description="Crescendo and GOAT: conversation turns.")
    backtracks: int = Field(10, ge=0, description="Crescendo: refused turns taken back.")
    pull_queries: int = Field(
        5, ge=1, description="Adaptive: target queries one pull of an iterative method may use."
    )


class RedteamConfig(Frozen):
    """Everything that determines a red-team run; stored with it so it can be resumed."""

    target: str = Field(DEFAULT_TARGET, description="Model spec of the model under test.")
    target_options: ModelOptions = ModelOptions()
    attacker: str = Field(DEFAULT_ATTACKER, description="Model spec of the attacker model.")
    attacker_options: ModelOptions = ModelOptions()
    judge: str = Field(DEFAULT_JUDGE, description="Judge spec; its verdict decides success.")
    judge_options: ModelOptions = ModelOptions()
    system_prompt: str | None = Field(None, description="System prompt given to the target.")
    suite: str = Field("builtin", description="Named behavior suite (sparring data).")
    behaviors: str | None = Field(None, description="Behavior file instead of the suite.")
    behaviors_format: str | None = Field(None, description="Loader for --behaviors.")
    columns: dict[str, str] | str | None = Field(None, description="Columns of --behaviors.")
    limit: int | None = Field(20, ge=1, description="At most this many harmful behaviors.")
    methods: tuple[str, ...] = Field(
        ("pair",),
        min_length=1,
        description="pair, tap, crescendo, goat, adaptive, or a static technique of the scan "
        "(e.g. direct, as a one-query baseline); a comma string on the command line.",
    )
    arms: tuple[str, ...] = Field(
        (*DEFAULT_ATTACKS, *ITERATIVE),
        min_length=1,
        description="Adaptive: the arms, static techniques and iterative methods.",
    )
    budgets: Budgets = Budgets()
    attacker_tries: int = Field(
        3, ge=1, description="Attacker samples per step before a refusing attacker gives up."
    )
    attacker_max_tokens: int = Field(256, ge=16, description="Attacker reply cap, tokens.")
    attacker_temperature: float = Field(1.0, ge=0.0, le=5.0)
    max_tokens: int = Field(128, ge=1, description="Target reply cap, tokens.")
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="Target sampling temperature.")
    on_topic: float | None = Field(
        0.25,
        ge=-1.0,
        le=1.0,
        description="TAP: least MiniLM cosine between a prompt and the goal to stay in the tree; "
        "None turns the off-topic pruning off.",
    )
    seed: int = 0
    concurrency: int = Field(16, ge=1, description="Model requests in flight at once.")
    max_requests: int | None = Field(
        None, ge=1, description="Budget: model requests (attacker and target) per process."
    )
    time_limit_s: float | None = Field(None, gt=0, description="Budget: wall time, seconds.")

    @field_validator("methods", "arms", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        return split_commas(value)

    @field_validator("methods", "arms")
    @classmethod
    def _known_names(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        allowed = {*ITERATIVE, *ATTACKS, *([ADAPTIVE] if info.field_name == "methods" else [])}
        for name in value:
            if name not in allowed:
                raise ValueError(
                    f"unknown method {name!r}; use {', '.join(ITERATIVE)}, {ADAPTIVE} or a "
                    "technique of `sparring attacks`"
                )
            if name in ATTACKS and ATTACKS.get(name).needs_helper:
                raise ValueError(f"{name} needs a helper model, which red-team runs do not have")
        if len(set(value)) != len(value):
            raise ValueError("a name is listed twice")
        return value

    @model_validator(mode="after")
    def _concurrency_reaches_the_models(self) -> RedteamConfig:
        # As in the scan: the request limit of an HTTP backend (16 by default) would
        # otherwise cap --concurrency silently; a limit the user set is kept.
        updates = {}
        for role in ("target", "attacker"):
            options: ModelOptions = getattr(self, f"{role}_options")
            if "max_concurrency" not in options.model_fields_set:
                updates[f"{role}_options"] = options.model_copy(
                    update={"max_concurrency": self.concurrency}
                )
        return self.model_copy(update=updates) if updates else self

    def judge_settings(self) -> JudgeOptions:
        """How the run's judge is built: its models' options."""
        return JudgeOptions(model=self.judge_options)

    def behavior_source(self) -> ScanConfig:
        """The scan config whose behavior selection this run shares (suite or file, limit,
        seed), so a red-team run and a scan of the same flags attack the same behaviors."""
        return ScanConfig(
            suite=self.suite,
            behaviors=self.behaviors,
            behaviors_format=self.behaviors_format,
            columns=self.columns,
            limit=self.limit,
            seed=self.seed,
        )


def redteam_config(fields: Mapping[str, Any], file: Path | None = None) -> RedteamConfig:
    """A validated config from command-line ``fields`` over the YAML ``file``'s.

    ``model_option`` (``ROLE.FIELD=VALUE`` flags) becomes the roles' option fields and the
    budget flags (``queries``, ``streams`` ...) go into ``budgets``; one ConfigError line
    names a bad field.
    """
    values = dict(fields)
    for role, options in option_flags(
        list(values.pop("model_option", [])), "--model-option"
    ).items():
        if role not in ROLES:
            raise ConfigError(
                f"--model-option {role}.…: no such model role; use one of: {', '.join(ROLES)}"
            )
        values.setdefault(f"{role}_options", {}).update(options)
    budgets = {name: values.pop(name) for name in Budgets.model_fields if name in values}
    if budgets:
        values["budgets"] = budgets
    if file is not None:
        values = merge_fields(read_yaml(file), values)
    return validate_config(RedteamConfig, values, str(file) if file else "command line")
