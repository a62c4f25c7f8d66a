"""``sparring view``: the local web viewer of a run store."""

from __future__ import annotations

from typing import Annotated

import typer

from sparring import api
from sparring.cli.common import DEFAULT_STORE, StoreOpt, app, say_plain


@app.command()
def view(
    store_path: StoreOpt = DEFAULT_STORE,
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8765,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on. Anything but loopback is warned about."),
    ] = "127.0.0.1",
    reviewer: Annotated[
        str | None, typer.Option(help="Who the labels you give are from (default: your user).")
    ] = None,
) -> None:
    """Browse runs, attempts and comparisons in a browser, and label verdicts (unsafe, safe,
    refusal) in a review queue; the labels feed `sparring judge eval --from-store`. Texts are
    redacted until you open one attempt's. Runs until Ctrl-C."""
    api.view(store_path, host=host, port=port, reviewer=reviewer, say=say_plain)
