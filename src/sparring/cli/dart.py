"""``sparring dart``: the DART loop from a config, its table, and the hardened model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sparring import api
from sparring.cli.common import (
    DEFAULT_STORE,
    OutOpt,
    StoreOpt,
    app,
    check_out_dir,
    err,
    open_store,
    out,
    say_plain,
)

dart_app = typer.Typer(help="DART: red model and target in a loop (MART is a config of it).")
app.add_typer(dart_app, name="dart")


@dart_app.callback(invoke_without_command=True)
def dart(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="DART YAML config (see configs/).")
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="Override: dart, mart, dart-no-diversity, dart-no-active.")
    ] = None,
    resume: Annotated[str | None, typer.Option(help="Continue a stopped DART run.")] = None,
    out_dir: OutOpt = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Run the DART loop from a config, then write its table (console, HTML, JSON)."""
    if ctx.invoked_subcommand is not None:
        return api.EXIT_OK
    config = None
    if resume is None:
        if config_file is None:
            raise api.ConfigError("sparring dart needs --config FILE (or --resume RUN_ID)")
        config = api.dart_config({"method": method} if method else {}, config_file)
    with open_store(store_path) as store:
        try:
            run_id = api.dart(config, store, resume=resume, progress=progress, say=say_plain)
        except api.StageStopped as stopped:
            err.print(
                f"DART run stopped ({stopped}); resume with: "
                f"sparring dart --resume {stopped.run_id}"
            )
            return api.EXIT_INTERRUPTED
        folder = check_out_dir(out_dir or Path("sparring-out") / run_id)
        api.dart_report(store, [run_id], folder, out)
    err.print(f"DART reports in {folder}/ (dart.html, dart.json)")
    return api.EXIT_OK


@dart_app.command("report")
def dart_report(
    run_ids: Annotated[list[str], typer.Argument(help="DART run ids: base comes from the first.")],
    out_dir: OutOpt = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> None:
    """Render the DART table for one or more stored runs (e.g. MART, DART, ablations)."""
    with open_store(store_path, existing=True) as store:
        for run_id in run_ids:
            store.get_run(run_id, kind="dart")
        folder = check_out_dir(out_dir or Path("sparring-out") / f"dart-{run_ids[0]}")
        api.dart_report(store, run_ids, folder, out)
    err.print(f"DART reports in {folder}/ (dart.html, dart.json)")


@dart_app.command("export")
def dart_export(
    run_id: Annotated[str, typer.Argument(help="The DART run whose hardened target to export.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="New (or empty) folder for the model, adapter and card.")
    ],
    store_path: StoreOpt = DEFAULT_STORE,
) -> None:
    """Write the hardened target as a merged GGUF, its LoRA adapter and a model card; print
    the model spec that chat, scan and every other command take."""
    with open_store(store_path, existing=True) as store:
        exported = api.dart_export(store, run_id, out_dir, say=say_plain)
    # The spec alone on stdout, so a script can capture it; the note goes to stderr.
    out.print(exported.spec, markup=False, highlight=False, soft_wrap=True)
    err.print(
        f"hardened target of {run_id} in {exported.folder}/ (model.gguf, adapter.gguf, "
        f"MODEL_CARD.md); try: sparring scan --target {exported.spec}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
