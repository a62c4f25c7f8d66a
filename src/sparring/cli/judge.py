"""``sparring judge``: train the embedded judge and measure judges against human labels."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sparring import api
from sparring.cli.common import BaseUrlOpt, app, err, out

judge_app = typer.Typer(help="Judges: train, and measure against human labels.")
app.add_typer(judge_app, name="judge")


@judge_app.command("train")
def judge_train(
    out_path: Annotated[Path, typer.Option("--out", help="Head file to write (.npz).")] = Path(
        "embedded-judge.npz"
    ),
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Labelled data (default SPARRING_DATA_DIR).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
) -> None:
    """Train the embedded judge's head on GPTFuzz and XSTest labels (about 2 minutes)."""
    record = api.judge_train(out_path, data_dir, seed, command=" ".join(sys.argv))
    out.print(record.model_dump_json(indent=2))


@judge_app.command("eval")
def judge_eval(
    data: Annotated[Path, typer.Option("--data", help="Labelled file (GPTFuzz, XSTest, JSONL).")],
    judge: Annotated[
        str, typer.Option("--judge", help="Judge spec, e.g. embedded, rules, harmbench:MODEL.")
    ] = "embedded",
    base_url: BaseUrlOpt = None,
    save: Annotated[bool, typer.Option(help="Keep the result as the judge's card.")] = True,
) -> None:
    """Measure a judge against human labels: accuracy, F1, kappa, confusion, throughput."""
    result = api.judge_eval(data, judge, api.model_options(base_url=base_url))
    columns = ("question", "n", "accuracy", "precision", "recall", "F1", "kappa", "unscorable")
    table = Table(*columns, title=f"{result.judge_id} on {data.name}")
    for name, scores in (("unsafe?", result.harm), ("refused?", result.refusal)):
        if scores is not None:
            figures = (scores.accuracy, scores.precision, scores.recall, scores.f1, scores.kappa)
            table.add_row(
                name, str(scores.n), *(f"{x:.3f}" for x in figures), str(scores.unscorable)
            )
    out.print(table)
    judged = sorted({label for row in result.confusion.values() for label in row})
    confusion = Table("human \\ judge", *judged, title="confusion")
    for human, row in sorted(result.confusion.items()):
        confusion.add_row(human, *(str(row.get(label, 0)) for label in judged))
    out.print(confusion)
    out.print(f"{result.verdicts_per_s:.0f} verdicts/s over {result.n} items")
    if save:
        err.print(f"card saved: {api.save_judge_card(result)}")
