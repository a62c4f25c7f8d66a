"""Scan configuration: one pydantic model shared by the CLI flags, YAML files and the API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from sparring.attacks import ATTACKS, FAMILIES, AttackChoice
from sparring.config_files import merge_fields, read_yaml, split_commas, validate_config
from sparring.data.suites import suite_attacks
from sparring.errors import ConfigError
from sparring.judges.registry import DEFAULT_BAND, JudgeOptions
from sparring.models.options import ModelOptions
from sparring.registry import option_flags
from sparring.report.formatting import concurrency_text
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
    attacks: tuple[AttackChoice, ...] = Field(
        tuple(AttackChoice.model_validate(name) for name in DEFAULT_ATTACKS),
        min_length=1,
        description="Techniques: names and {name: ..., OPTION: value} mappings, or a comma "
        "string of names.",
    )
    judge: str = Field("embedded", description="Judge spec, e.g. embedded, rules, harmbench:MODEL.")
    judge_options: ModelOptions = Field(
        default_factory=ModelOptions, description="Options of the judge's models (base_url ...)."
    )
    judge_band: tuple[float, float] = Field(
        DEFAULT_BAND,
        description="p_unsafe band (probabilities, inclusive) an escalate: judge sends on to its "
        "second judge; 'LOW,HIGH' on the command line.",
    )
    helper: str | None = Field(None, description="Helper model spec for translation attacks.")
    helper_options: ModelOptions = Field(
        default_factory=ModelOptions, description="Options of the helper model (base_url ...)."
    )
    samples: int = Field(1, ge=1, description="Target samples per attempt.")
    limit: int | None = Field(
        20, ge=1, description="At most this many harmful and this many benign behaviors."
    )
    max_tokens: int = Field(64, ge=1, description="Target reply length cap, tokens.")
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    seed: int = 0
    concurrency: int = Field(
        16,
        ge=1,
        description="Attempts in flight at once; also the target backend's max_concurrency "
        "unless target_options sets it.",
    )
    max_requests: int | None = Field(None, ge=1, description="Budget: target requests.")
    time_limit_s: float | None = Field(None, gt=0, description="Budget: wall time, seconds.")

    @model_validator(mode="before")
    @classmethod
    def _templates_file_as_option(cls, values: Any) -> Any:
        # Runs stored before attacks took options kept the template-file attack's file in a
        # top-level ``templates_file``; it becomes that attack's ``file`` option, so they
        # still resume (the attempts' keys do not depend on where the path was written).
        if not isinstance(values, Mapping) or "templates_file" not in values:
            return values
        values = dict(values)
        path = values.pop("templates_file")
        if path is not None:
            entries = _attack_entries(values.get("attacks", DEFAULT_ATTACKS))
            values["attacks"] = [_with_file(entry, path) for entry in entries]
        return values

    @model_validator(mode="before")
    @classmethod
    def _suite_chooses_default_attacks(cls, values: Any) -> Any:
        # A suite of applications (injection) has attacks of its own; they are written into
        # the config, so a resume runs them even if the suite's defaults change later.
        if not isinstance(values, Mapping) or values.get("attacks") is not None:
            return values
        defaults = suite_attacks(values.get("suite"))
        return values if defaults is None else {**values, "attacks": list(defaults)}

    @model_validator(mode="before")
    @classmethod
    def _concurrency_reaches_the_target(cls, values: Any) -> Any:
        # --concurrency is the number of requests in flight: a backend's own limit (16 by
        # default) would otherwise cap it silently. A limit the user set is kept, and the
        # one filled in here is stored with the run, so a resume runs as the run did.
        if not isinstance(values, Mapping):
            return values
        concurrency = values.get("concurrency", cls.model_fields["concurrency"].default)
        if isinstance(concurrency, str) and concurrency.strip().isdigit():
            concurrency = int(concurrency)
        if type(concurrency) is not int or concurrency < 1:
            return values  # the concurrency field's own check names the mistake
        options = values.get("target_options")
        if isinstance(options, ModelOptions):
            if "max_concurrency" in options.model_fields_set:
                return values
            options = options.model_dump(exclude_unset=True)
        elif options is None:
            options = {}
        elif not isinstance(options, Mapping) or "max_concurrency" in options:
            return values
        return {**values, "target_options": {**options, "max_concurrency": concurrency}}

    @field_validator("attacks", mode="before")
    @classmethod
    def _split_attacks(cls, value: Any) -> Any:
        return _attack_entries(value)

    @field_validator("judge_band", mode="before")
    @classmethod
    def _split_band(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(","))
        return value

    @field_validator("judge_band")
    @classmethod
    def _ordered_band(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError("write two probabilities LOW,HIGH with 0 <= LOW <= HIGH <= 1")
        return value

    @field_validator("attacks")
    @classmethod
    def _one_setting_per_attack(cls, value: tuple[AttackChoice, ...]) -> tuple[AttackChoice, ...]:
        first: dict[str, AttackChoice] = {}
        for choice in value:
            if first.setdefault(choice.name, choice) != choice:
                raise ConfigError(
                    f"attack {choice.name} is listed twice with different options; list it once"
                )
        return value


def judge_settings(config: ScanConfig) -> JudgeOptions:
    """How the scan's judge is built: its models' options and the escalation band."""
    return JudgeOptions(model=config.judge_options, band=config.judge_band)


def concurrency_line(config: ScanConfig) -> str:
    """How many attempts the scan keeps in flight and the target backend's own limit, as
    one line for the user: ``64 attempts in flight; target backend limit 64``."""
    return concurrency_text(config.concurrency, config.target_options.max_concurrency)


def _attack_entries(value: Any) -> Any:
    """A comma string of attack names as a list of names, family patterns expanded (see
    ``expand_pattern``); a list has its patterns expanded; anything else as it is."""
    value = split_commas(value)
    if not isinstance(value, (list, tuple)):
        return value
    entries: list[Any] = []
    for entry in value:
        for item in expand_pattern(entry):
            if not isinstance(item, str) or item not in entries:
                entries.append(item)
    return entries


def expand_pattern(entry: Any) -> list[Any]:
    """The attacks an attacks entry names: a family (``injection.direct``) or a pattern of
    families or names (``injection.*``, ``indirect-*``) gives every registered attack that
    matches and runs without options, by name; anything else stays as it is. ConfigError
    for a pattern that matches none."""
    if not isinstance(entry, str) or entry in ATTACKS:
        return [entry]
    if entry not in FAMILIES and not any(mark in entry for mark in "*?["):
        return [entry]
    found = [
        name
        for name, cls in ATTACKS.items()
        if (fnmatchcase(cls.family, entry) or fnmatchcase(name, entry))
        and not any(f.is_required() for f in cls.Options.model_fields.values())
    ]
    if not found:
        raise ConfigError(
            f"attacks: {entry!r} matches no attack or family; families: {', '.join(FAMILIES)}"
        )
    return found


def _with_file(entry: Any, path: str) -> Any:
    """A template-file entry given ``path`` as its file option, unless it has one."""
    if entry == "template-file":
        return {"name": entry, "file": path}
    if isinstance(entry, Mapping) and entry.get("name") == "template-file":
        return {"file": path, **entry}
    return entry


def with_attack_options(
    attacks: Any, flags: Sequence[str], suite: str | None = None
) -> list[AttackChoice]:
    """The scan's attacks with ``--attack-option NAME.OPTION=VALUE`` flags merged in.

    ``attacks`` is what the attacks field takes (a comma string, or a list of names and
    mappings), or None for the default techniques (``suite``'s own, when it has some).
    Raises one ConfigError line for a malformed flag, an unknown attack or option, a bad
    value, or an attack the scan does not run.
    """
    if attacks is None:
        attacks = suite_attacks(suite) or DEFAULT_ATTACKS
    entries = _attack_entries(attacks)
    choices = [validate_config(_Entry, {"attack": entry}, "attacks").attack for entry in entries]
    options = option_flags(list(flags), "--attack-option")
    listed = {choice.name for choice in choices}
    for name in options:
        AttackChoice.model_validate({"name": name, **options[name]})
        if name not in listed:
            raise ConfigError(
                f"--attack-option {name}.…: the scan does not run attack {name}; add it to "
                "the attacks"
            )
    return [
        AttackChoice.model_validate({"name": c.name, **c.options, **options.get(c.name, {})})
        for c in choices
    ]


class _Entry(Frozen):
    """One attacks entry, validated on its own so a bad one is one ConfigError line."""

    attack: AttackChoice


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> ScanConfig:
    """Read a YAML scan config, apply overrides, and validate it. An override that is a
    mapping (``target_options``) is merged into the file's, field by field."""
    return make_config(merge_fields(read_yaml(path), overrides or {}), source=str(path))


def make_config(values: dict[str, Any], source: str = "scan options") -> ScanConfig:
    """Validate a dict of scan fields."""
    return validate_config(ScanConfig, values, source)
