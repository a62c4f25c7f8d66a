"""``sparring redteam`` as one call: config from flags or the stored run, the campaign, then
the console summary and the reports: ``redteam.html``, ``redteam.json`` and
``redteam.junit.xml``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from sparring.config_files import validate_config
from sparring.errors import ConfigError
from sparring.redteam.config import RedteamConfig, redteam_config
from sparring.redteam.html import write_html
from sparring.redteam.junit import write_junit
from sparring.redteam.report import gate, load_report, render_console, to_json
from sparring.redteam.run import load_behaviors, run_redteam
from sparring.report import write_private
from sparring.report.gate import check_fail_above
from sparring.store import RunStore


@dataclass(frozen=True)
class RedteamOutcome:
    """What ``sparring redteam`` did."""

    run_id: str
    status: str
    """``finished``, or why the run stopped early (``budget``, ``interrupted``)."""
    report: Path
    """The JSON report written."""
    html: Path
    """The HTML report written beside it."""
    junit: Path
    """The JUnit XML written beside it."""
    gate_failed: bool
    """A method's ASR was above ``fail_above``."""


def redteam_command(
    fields: Mapping[str, Any],
    store_path: Path,
    *,
    file: Path | None = None,
    resume: str | None = None,
    out_dir: Path | None = None,
    redact: bool = False,
    fail_above: float | None = None,
    console: Console | None = None,
    say: Callable[[str], None] | None = None,
) -> RedteamOutcome:
    """Run (or resume) a campaign of ``fields`` (over the YAML ``file``'s), then print its
    summary on ``console`` and write ``redteam.html``, ``redteam.json`` and
    ``redteam.junit.xml`` into ``out_dir`` (default ``sparring-out/RUN_ID``); ``redact``
    hides texts in the first two, and ``fail_above`` (a probability) gates every method's
    ASR. A resume takes the stored config and no other fields. The input is checked before
    the store at ``store_path`` is opened (or created)."""
    if fail_above is not None:
        check_fail_above(fail_above)
    behaviors = None
    if resume is not None:
        if fields or file is not None:
            raise ConfigError("--resume reuses the stored config; drop the other redteam flags")
    else:
        config = redteam_config(fields, file)
        behaviors = load_behaviors(config, say)
    with RunStore(store_path) as store:
        if resume is not None:
            stored = store.get_run(resume, kind="redteam").config
            config = validate_config(RedteamConfig, stored, f"run {resume}")
        result = asyncio.run(
            run_redteam(config, store, resume=resume, behaviors=behaviors, say=say)
        )
        report = load_report(store, result.run_id)
        folder = out_dir or Path("sparring-out") / result.run_id
        path = write_private(
            folder / "redteam.json", json.dumps(to_json(report, store, redact=redact), indent=2)
        )
        html = write_html(
            folder / "redteam.html", report, store, redact=redact, fail_above=fail_above
        )
    junit = write_junit(folder / "redteam.junit.xml", report, fail_above=fail_above)
    if console is not None:
        render_console(report, console)
    failed = fail_above is not None and not gate(report, fail_above).passed
    return RedteamOutcome(result.run_id, result.status, path, html, junit, failed)
