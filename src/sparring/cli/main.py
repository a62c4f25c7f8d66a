"""The entry point: parse, run, and turn every outcome into one exit code (see
``sparring.errors``): user mistakes print one line, never a traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape

from sparring import api
from sparring.cli import catalogue, dart, defend, judge, redteam, scan, view  # noqa: F401 - they register commands
from sparring.cli.common import app, err, out


def _version(value: bool) -> None:
    if value:
        out.print(f"sparring {api.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """sparring: scans, red teaming, hardening and guards for language models."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _usage_line(error: typer.TyperException) -> str:
    """One line for a command-line mistake, and where to read the usage."""
    message = " ".join(error.format_message().split())
    context = getattr(error, "ctx", None)
    path = getattr(context, "command_path", "sparring")
    return f"{message} (see: {path} --help)"


def _error(line: str) -> None:
    err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)


def run(args: Sequence[str]) -> int:
    """Run the command line ``args`` and return its exit code.

    SIGTERM is handled as Ctrl-C, so a CI cancel leaves the run resumable and marked
    ``interrupted``. With no arguments the help is printed (exit 2).
    """
    if not args:
        app(["--help"], prog_name="sparring", standalone_mode=False)
        return api.EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = app(list(args), prog_name="sparring", standalone_mode=False)
    except api.SparringError as error:
        _error(str(error))
        return error.exit_code
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        return api.EXIT_INTERRUPTED
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as error:
        _error(_usage_line(error))
        return api.EXIT_USAGE
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code if isinstance(code, int) else api.EXIT_OK


def main() -> None:
    """Console entry point (``sparring``)."""
    sys.exit(run(sys.argv[1:]))
