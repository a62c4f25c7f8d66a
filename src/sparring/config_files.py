"""Reading YAML config files and validating them into pydantic models, with one error line
naming the file and field; shared by every application's config (scan, DART)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sparring.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


def read_yaml(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file, or one ConfigError line."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}; check the --config path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; --config takes a YAML file") from None
    except OSError as err:
        raise ConfigError(
            f"{path}: cannot be read ({err.strerror}); check the --config path"
        ) from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not a text file (invalid UTF-8 at byte {err.start}); --config takes a "
            "YAML file"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level")
    return raw


def validate_config(model: type[C], values: dict[str, Any], source: str) -> C:
    """Validate ``values`` as ``model``; the first bad field becomes one ConfigError line."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{source}: field {field!r}: {first['msg']}") from None


def merge_fields(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; nested mappings are merged, not replaced."""
    merged = dict(base)
    for name, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = merge_fields(merged[name], value)
        else:
            merged[name] = value
    return merged


def split_commas(value: Any) -> Any:
    """A comma string (``pair,tap``; ``--attack-option NAME.positions=start,end``) as a list
    of its stripped, non-empty parts; anything else as it is (for ``mode="before"``
    validators)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value
