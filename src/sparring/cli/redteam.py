"""``sparring redteam``: an attacker model against the target (PAIR, TAP, Crescendo, GOAT,
an adaptive campaign), reported as attack success against target queries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sparring import api
from sparring.cli.common import (
    DEFAULT_STORE,
    AttackerBaseUrlOpt,
    BaseUrlOpt,
    FailAboveOpt,
    ResumeOpt,
    RunOutOpt,
    SeedOpt,
    StoreOpt,
    TimeLimitOpt,
    app,
    check_out_dir,
    err,
    out,
    say_plain,
)


@app.command()
def redteam(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML file with redteam fields.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Model spec under test (default: the scan's).")
    ] = None,
    base_url: BaseUrlOpt = None,
    attacker: Annotated[
        str | None,
        typer.Option(help="Attacker model spec (default: builtin/qwen2.5-coder-0.5b)."),
    ] = None,
    attacker_base_url: AttackerBaseUrlOpt = None,
    judge: Annotated[
        str | None,
        typer.Option(help="Judge spec; success is its unsafe label (default: embedded)."),
    ] = None,
    judge_base_url: Annotated[
        str | None, typer.Option("--judge-base-url", help="Server root of an LLM judge's model.")
    ] = None,
    model_option: Annotated[
        list[str] | None,
        typer.Option("--model-option", help="ROLE.FIELD=VALUE for target, attacker or judge."),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            help="Comma-separated: pair, tap, crescendo, goat, adaptive, or a static technique "
            "such as direct (default: pair).",
        ),
    ] = None,
    arms: Annotated[
        str | None, typer.Option(help="Adaptive: comma-separated arms (default: scan + iterative).")
    ] = None,
    suite: Annotated[str | None, typer.Option(help="Behavior suite (see: sparring data).")] = None,
    behaviors: Annotated[
        str | None, typer.Option(help="Behavior file, URL or hf:// path instead of a suite.")
    ] = None,
    behaviors_format: Annotated[
        str | None, typer.Option("--format", help="Loader for --behaviors (default: detected).")
    ] = None,
    columns: Annotated[str | None, typer.Option(help="Columns of a --behaviors file.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N harmful behaviors.")] = None,
    queries: Annotated[
        int | None, typer.Option(min=1, help="Target queries per behavior and method (20).")
    ] = None,
    streams: Annotated[int | None, typer.Option(min=1, help="PAIR streams (5).")] = None,
    depth: Annotated[
        int | None, typer.Option(min=1, help="PAIR iterations per stream, TAP depth (4).")
    ] = None,
    width: Annotated[int | None, typer.Option(min=1, help="TAP leaves kept per depth (3).")] = None,
    branching: Annotated[int | None, typer.Option(min=1, help="TAP children per leaf (2).")] = None,
    turns: Annotated[int | None, typer.Option(min=1, help="Crescendo and GOAT turns (10).")] = None,
    backtracks: Annotated[
        int | None, typer.Option(min=0, help="Crescendo backtracks on refusal (10).")
    ] = None,
    pull_queries: Annotated[
        int | None,
        typer.Option("--pull-queries", min=1, help="Adaptive: queries per iterative pull (5)."),
    ] = None,
    system_prompt: Annotated[
        str | None, typer.Option("--system-prompt", help="System prompt for the target.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Target reply cap (128).")] = None,
    seed: SeedOpt = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Requests in flight.")] = None,
    max_requests: Annotated[
        int | None, typer.Option(min=1, help="Budget: model requests for this process.")
    ] = None,
    time_limit: TimeLimitOpt = None,
    resume: ResumeOpt = None,
    out_dir: RunOutOpt = None,
    redact: Annotated[
        bool, typer.Option(help="Hide prompts and replies in the HTML and JSON.")
    ] = False,
    fail_above: FailAboveOpt = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Red-team a model with an attacker model; report ASR against target queries."""
    flags: dict[str, Any] = {
        "target": target,
        "attacker": attacker,
        "judge": judge,
        "methods": method,
        "arms": arms,
        "suite": suite,
        "behaviors": behaviors,
        "behaviors_format": behaviors_format,
        "columns": columns,
        "limit": limit,
        "queries": queries,
        "streams": streams,
        "depth": depth,
        "width": width,
        "branching": branching,
        "turns": turns,
        "backtracks": backtracks,
        "pull_queries": pull_queries,
        "system_prompt": system_prompt,
        "max_tokens": max_tokens,
        "seed": seed,
        "concurrency": concurrency,
        "max_requests": max_requests,
        "time_limit_s": time_limit,
        "model_option": model_option,
    }
    fields = {k: v for k, v in flags.items() if v is not None}
    urls = {"target": base_url, "attacker": attacker_base_url, "judge": judge_base_url}
    for role, url in urls.items():
        if url is not None:
            fields[f"{role}_options"] = {"base_url": url}
    if out_dir is not None:
        check_out_dir(out_dir)
    done = api.redteam(
        fields,
        store_path,
        file=config_file,
        resume=resume,
        out_dir=out_dir,
        redact=redact,
        fail_above=fail_above,
        console=out,
        say=say_plain,
    )
    err.print(
        f"run {done.run_id}: {done.status}; reports in {done.report.parent}/ "
        f"({done.html.name}, {done.report.name}, {done.junit.name})"
    )
    if done.status != "finished":
        err.print(f"resume with: sparring redteam --resume {done.run_id}")
        return api.EXIT_INTERRUPTED if done.status == "interrupted" else api.EXIT_OK
    return api.EXIT_GATE if done.gate_failed else api.EXIT_OK
