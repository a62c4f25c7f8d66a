"""What every command shares: the root app, the consoles, common options, and the helpers
that keep hostile text off the terminal and check output folders before work starts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sparring import api

app = typer.Typer(
    name="sparring",
    help="Find where a language model behaves unsafely, then fix it.",
    pretty_exceptions_enable=False,
    add_completion=False,
)

out = Console()
err = Console(stderr=True)

DEFAULT_STORE = api.default_store()
"""The store when --store is not given: $SPARRING_STORE or sparring-runs/runs.sqlite."""
StoreOpt = Annotated[
    Path, typer.Option("--store", help="Run store (SQLite file); env SPARRING_STORE.")
]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="Server root for openai-compatible models.")
]
AttackerBaseUrlOpt = Annotated[
    str | None, typer.Option("--attacker-base-url", help="Server root of the attacker.")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Report folder.")]
RunOutOpt = Annotated[
    Path | None, typer.Option("--out", help="Report folder (default sparring-out/RUN_ID).")
]
ResumeOpt = Annotated[
    str | None, typer.Option(help="Continue a stopped run; its stored config is reused.")
]
SeedOpt = Annotated[int | None, typer.Option(help="Seed for selection and sampling.")]
TimeLimitOpt = Annotated[
    float | None, typer.Option("--time-limit", min=0.001, help="Budget: wall time, s.")
]
FailAboveOpt = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0, help="Exit 1 when overall ASR exceeds this (0..1)."),
]

# Terminal escape sequences (OSC ... BEL/ST, CSI ..., two-byte ESC x) and other control
# characters: model output and data are hostile, and an escape sequence printed raw can
# rewrite the terminal or its title.
_CONTROL = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def printable(text: str) -> str:
    """``text`` with terminal control sequences removed; newlines and tabs are kept."""
    return _CONTROL.sub("", text)


def say_plain(line: str) -> None:
    """Print a progress or note line on stderr as it is: no markup, no highlighting."""
    err.print(printable(line), markup=False, highlight=False, soft_wrap=True)


def check_out_dir(folder: Path) -> Path:
    """Make the report folder before any work, or fail with one line (ConfigError)."""
    if folder.exists() and not folder.is_dir():
        raise api.ConfigError(f"--out {folder} is a file; pass a folder for the reports")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise api.ConfigError(
            f"--out {folder}: cannot create the report folder ({error.strerror})"
        ) from None
    return folder


@contextmanager
def open_store(path: Path, *, existing: bool = False) -> Iterator[api.RunStore]:
    """The store, closed after use; runs this process leaves ``running`` when Ctrl-C or
    SIGTERM arrives outside the engine are marked ``interrupted`` on the way out. With
    ``existing`` (commands that read stored runs) a missing store is a one-line error,
    not a new empty file."""
    if existing and not path.exists():
        raise api.ConfigError(
            f"--store {path}: no run store there; pass the --store (or SPARRING_STORE) "
            "the run was written to"
        )
    with api.open_store(path) as store:
        try:
            yield store
        except KeyboardInterrupt:
            for run_id in store.interrupt_own_runs():
                err.print(f"run {run_id} interrupted; it can be resumed")
            raise
