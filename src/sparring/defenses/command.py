"""``sparring defend`` from start to end, for ``sparring.api.defend``: check the input,
run the arms into the store, write the reports and print the table."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from sparring.config_files import merge_fields, read_yaml
from sparring.defenses.config import DefendConfig, defend_config
from sparring.defenses.evaluation import RUN_KIND, load_defend_behaviors, run_defend
from sparring.defenses.report import DefendFiles, render_console, write_defend_reports
from sparring.defenses.tally import DefendSummary, summarize_defend
from sparring.errors import ConfigError
from sparring.scan.config import with_attack_options
from sparring.store import RunStore
from sparring.types import Behavior


@dataclass(frozen=True)
class DefendOutcome:
    """What ``sparring defend`` did: the run, how it ended, its report files and numbers."""

    run_id: str
    status: str
    """``finished``, or how the run stopped (``interrupted``, ``budget``)."""
    files: DefendFiles
    summary: DefendSummary


def defend_command(
    fields: Mapping[str, Any],
    store_path: Path,
    *,
    file: Path | None = None,
    defense_options: Sequence[str] = (),
    attack_options: Sequence[str] = (),
    resume: str | None = None,
    out_dir: Path | None = None,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> DefendOutcome:
    """Run (or resume) a defend run and report it; see ``sparring.api.defend``."""
    config: DefendConfig
    behaviors: list[Behavior]
    if resume is not None:
        if fields or file is not None or defense_options or attack_options:
            raise ConfigError("--resume reuses the stored config; drop the other defend flags")
    else:
        values = merge_fields(read_yaml(file), dict(fields)) if file else dict(fields)
        if attack_options:
            values["attacks"] = with_attack_options(values.get("attacks"), attack_options)
        source = str(file) if file else "command line"
        config = defend_config(values, defense_options=defense_options, source=source)
        behaviors = load_defend_behaviors(config)  # the input is checked before the store
    with RunStore(store_path) as store:
        if resume is not None:
            stored = store.get_run(resume, kind=RUN_KIND).config
            config = defend_config(stored, source=f"run {resume}")
            behaviors = store.behaviors(resume)
        run = asyncio.run(
            run_defend(
                config, store, resume=resume, behaviors=behaviors, progress=progress, say=say
            )
        )
        summary = summarize_defend(store, run.run_id)
    folder = out_dir or Path("sparring-out") / run.run_id
    files = write_defend_reports(summary, folder)
    if console is not None:
        render_console(summary, console)
    return DefendOutcome(run_id=run.run_id, status=run.status, files=files, summary=summary)
