"""User-supplied jailbreak templates, read from a file, one chosen per behavior.

This lets a scan replay any collection of human-written jailbreaks, such as the in-the-wild
prompts of Shen et al. (CCS 2024) or the seed templates of GPTFuzzer (Yu et al., "GPTFUZZER:
Red Teaming Large Language Models with Auto-Generated Jailbreak Prompts", 2023), without
those texts living in this package.

Formats, by file suffix; each template holds ``{request}`` or GPTFuzzer's
``[INSERT PROMPT HERE]`` where the request goes:

- ``.json``: a list of strings, or of objects with a ``text`` (or ``template``) field and
  an optional ``id``.
- ``.jsonl``: one such string or object per line.
- ``.csv``: a header with a ``text`` (or ``template``) column and an optional ``id`` column,
  the layout of GPTFuzzer's ``gptfuzzer_templates.csv``.
- anything else: plain text, templates separated by lines holding only ``---``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sparring.attacks.base import (
    Attack,
    AttackContext,
    AttackPrompt,
    behavior_rng,
    register,
    request_text,
    single_turn,
)
from sparring.errors import ConfigError
from sparring.types import Behavior

PLACEHOLDERS = ("{request}", "[INSERT PROMPT HERE]")
"""Markers a template may use for the request; every occurrence is replaced."""

TEXT_FIELDS = ("text", "template")


@dataclass(frozen=True)
class Template:
    """One user template: its id (from the file, or its position) and its text."""

    id: str
    text: str

    def fill(self, request: str) -> str:
        """The template with each placeholder replaced by ``request``."""
        filled = self.text
        for marker in PLACEHOLDERS:
            filled = filled.replace(marker, request)
        return filled


def load_templates(path: Path) -> tuple[Template, ...]:
    """Read and check every template in ``path``.

    Raises ConfigError naming the file, and the row where one is at fault, for a missing or
    unreadable file, a malformed row, a template without placeholder, or an empty file.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"templates file not found: {path}; check the path given") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"templates file {path} cannot be read as UTF-8 text: {err}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        rows = _json_rows(path, raw)
    elif suffix == ".jsonl":
        rows = _jsonl_rows(path, raw)
    elif suffix == ".csv":
        rows = _csv_rows(path, raw)
    else:
        rows = _text_rows(raw)
    templates = tuple(_checked(path, label, template) for label, template in rows)
    if not templates:
        raise ConfigError(f"templates file {path} holds no templates; add at least one")
    return templates


def _checked(path: Path, label: str, template: Template) -> Template:
    if not any(marker in template.text for marker in PLACEHOLDERS):
        raise ConfigError(
            f"templates file {path} {label}: no {{request}} or [INSERT PROMPT HERE] "
            "placeholder; add one where the request goes"
        )
    return template


def _entry(path: Path, label: str, value: Any, default_id: str) -> Template:
    if isinstance(value, str):
        return Template(default_id, value)
    if isinstance(value, dict):
        text = next((value[key] for key in TEXT_FIELDS if key in value), None)
        if isinstance(text, str):
            return Template(str(value.get("id", default_id)), text)
    raise ConfigError(
        f"templates file {path} {label}: expected a string or an object with a 'text' field"
    )


def _json_rows(path: Path, raw: str) -> list[tuple[str, Template]]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"templates file {path} line {err.lineno}: invalid JSON") from None
    if not isinstance(data, list):
        raise ConfigError(f"templates file {path}: expected a JSON list of templates")
    rows = []
    for index, value in enumerate(data, start=1):
        label = f"entry {index}"
        rows.append((label, _entry(path, label, value, f"entry-{index}")))
    return rows


def _jsonl_rows(path: Path, raw: str) -> list[tuple[str, Template]]:
    rows = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        label = f"line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"templates file {path} {label}: invalid JSON") from None
        rows.append((label, _entry(path, label, value, f"line-{number}")))
    return rows


def _csv_rows(path: Path, raw: str) -> list[tuple[str, Template]]:
    reader = csv.DictReader(io.StringIO(raw, newline=""))
    columns = reader.fieldnames or []
    column = next((name for name in TEXT_FIELDS if name in columns), None)
    if column is None:
        raise ConfigError(
            f"templates file {path}: no 'text' column (columns: {', '.join(columns) or 'none'})"
        )
    rows = []
    try:
        for index, record in enumerate(reader, start=1):
            label = f"row {index}"
            text = record.get(column)
            if not isinstance(text, str) or None in record:
                raise ConfigError(
                    f"templates file {path} {label}: wrong number of fields; quote the template"
                )
            rows.append((label, Template(record.get("id") or f"row-{index}", text)))
    except csv.Error as err:
        raise ConfigError(f"templates file {path} line {reader.line_num}: {err}") from None
    return rows


def _text_rows(raw: str) -> list[tuple[str, Template]]:
    chunks: list[list[str]] = [[]]
    for line in raw.splitlines():
        if line.strip() == "---":
            chunks.append([])
        else:
            chunks[-1].append(line)
    texts = ["\n".join(chunk).strip() for chunk in chunks]
    return [
        (f"template {index}", Template(f"template-{index}", text))
        for index, text in enumerate(texts, start=1)
        if text
    ]


@lru_cache(maxsize=8)
def _cached(path: Path, mtime_ns: int, size: int) -> tuple[Template, ...]:
    # Keyed on mtime and size so that an edited file is read again.
    return load_templates(path)


def templates_for(path: Path) -> tuple[Path, tuple[Template, ...]]:
    """``path`` with ``~`` expanded, and its templates, read once per version of the file."""
    path = Path(path).expanduser()
    try:
        stat = path.stat()
    except OSError:
        raise ConfigError(f"templates file not found: {path}; check the path given") from None
    return path, _cached(path, stat.st_mtime_ns, stat.st_size)


class TemplateFileOptions(BaseModel):
    """Options of the template-file attack."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Path | None = Field(None, description="The templates file (JSON, JSONL, CSV, text).")


@register
class TemplateFile(Attack[TemplateFileOptions]):
    """The request placed in one template from the user's file, chosen by seed."""

    name = "template-file"
    family = "jailbreak.template"
    description = "User templates from a JSON, JSONL, CSV or text file, one per behavior."
    Options = TemplateFileOptions

    async def realize(self, behavior: Behavior, ctx: AttackContext) -> list[AttackPrompt]:
        """One prompt from a template chosen by seed and behavior id.

        Raises ConfigError when no templates file is configured or the file is bad.
        """
        if self.options.file is None:
            raise ConfigError(
                "template-file needs a templates file: pass --templates PATH "
                "(or --attack-option template-file.file=PATH)"
            )
        # Reading the file blocks; off the event loop it cannot stall other requests.
        path, templates = await asyncio.to_thread(templates_for, self.options.file)
        template = behavior_rng(self.name, ctx.seed, behavior).choice(templates)
        return [
            single_turn(
                template.fill(request_text(behavior)),
                template=template.id,
                templates_file=str(path),
            )
        ]
