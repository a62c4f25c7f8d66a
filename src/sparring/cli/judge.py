"""``sparring judge``: train the embedded judge and measure judges against human labels."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sparring import api
from sparring.cli.common import DEFAULT_STORE, BaseUrlOpt, StoreOpt, app, err, open_store, out

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
    """Train the embedded judge's head on GPTFuzz and XSTest labels and measure it
    leave-one-source-out (about 30 seconds on two cores)."""
    record = api.judge_train(out_path, data_dir, seed, command=" ".join(sys.argv))
    out.print(record.model_dump_json(indent=2))


@judge_app.command("eval")
def judge_eval(
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled file (GPTFuzz, XSTest, JSONL).")
    ] = None,
    from_store: Annotated[
        bool,
        typer.Option("--from-store", help="Use the labels people gave in `sparring view`."),
    ] = False,
    store_path: StoreOpt = DEFAULT_STORE,
    run: Annotated[
        str | None, typer.Option("--run", help="With --from-store: this run's labels only.")
    ] = None,
    judge: Annotated[
        str, typer.Option("--judge", help="Judge spec, e.g. embedded, rules, harmbench:MODEL.")
    ] = "embedded",
    base_url: BaseUrlOpt = None,
    save: Annotated[bool, typer.Option(help="Keep the result as the judge's card.")] = True,
) -> None:
    """Measure a judge against human labels: accuracy, precision, recall, kappa (with 95%
    Wilson intervals), per source and per group (category or prompt type), confusion and
    throughput. DATA is a GPTFuzz or XSTest CSV, or JSON lines in any labelled format;
    --from-store uses the labels given in `sparring view` instead."""
    if from_store == (data is not None):
        raise api.ConfigError("judge eval needs --data FILE or --from-store (one of them)")
    if run is not None and not from_store:
        raise api.ConfigError("--run applies to --from-store; add --from-store or drop --run")
    options = api.model_options(base_url=base_url)
    if data is not None:
        result = api.judge_eval(data, judge, options)
        labels = data.name
    else:
        with open_store(store_path) as store:
            result = api.judge_eval(None, judge, options, store=store, run_id=run)
        labels = f"human labels in {store_path}" + (f", run {run}" if run else "")
    where = {True: "out of source", False: "IN SOURCE (trained on it)", None: "source unknown"}
    table = Table(
        "source",
        "question",
        "n",
        "accuracy [95% CI]",
        "precision [95% CI]",
        "recall [95% CI]",
        "kappa",
        "unscorable",
        title=f"{result.judge_id} on {labels} ({where[result.out_of_source]})",
    )
    rows = [("all", result.harm, result.refusal)]
    if len(result.per_source) > 1:
        rows += [(name, s.harm, s.refusal) for name, s in result.per_source.items()]
    for source, harm, refusal in rows:
        for name, scores in (("unsafe?", harm), ("refused?", refusal)):
            if scores is not None:
                table.add_row(
                    source,
                    name,
                    str(scores.n + scores.unscorable),
                    _ci(scores.accuracy, scores.accuracy_ci),
                    _ci(scores.precision, scores.precision_ci),
                    _ci(scores.recall, scores.recall_ci),
                    f"{scores.kappa:.3f}",
                    str(scores.unscorable),
                )
    out.print(table)
    groups = Table("group", "n", "agreement", title="agreement per group (category or type)")
    for group, agreement in result.per_group.items():
        groups.add_row(group, str(agreement.n), f"{agreement.agreement:.3f}")
    out.print(groups)
    judged = sorted({label for row in result.confusion.values() for label in row})
    confusion = Table("human \\ judge", *judged, title="confusion")
    for human, row in sorted(result.confusion.items()):
        confusion.add_row(human, *(str(row.get(label, 0)) for label in judged))
    out.print(confusion)
    out.print(f"{result.verdicts_per_s:.0f} verdicts/s over {result.n} items")
    if save:
        err.print(f"card saved: {api.save_judge_card(result)}")


def _ci(value: float, low_high: tuple[float, float]) -> str:
    """``0.821 [0.812, 0.829]``: a proportion with its 95% interval."""
    return f"{value:.3f} [{low_high[0]:.3f}, {low_high[1]:.3f}]"
