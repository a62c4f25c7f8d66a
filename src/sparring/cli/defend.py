"""``sparring defend``: attack success, over-refusal, latency and calls of each defense
against the undefended target, in one run; with ``--adaptive``, the red-team methods named
against every arm too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from sparring import api
from sparring.cli.common import (
    DEFAULT_STORE,
    AttackerBaseUrlOpt,
    BaseUrlOpt,
    ResumeOpt,
    RunOutOpt,
    StoreOpt,
    TimeLimitOpt,
    app,
    check_out_dir,
    err,
    out,
    say_plain,
)


@app.command()
def defend(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML file with defend fields.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Model spec to defend.")] = None,
    base_url: BaseUrlOpt = None,
    defenses: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated defenses, each a guard stack such as self-reminder or "
            "input-classifier+sandwich (see: sparring defend --list)."
        ),
    ] = None,
    defense_option: Annotated[
        list[str] | None,
        typer.Option(
            "--defense-option", help="A guard's option, e.g. smoothllm.copies=3 (repeat)."
        ),
    ] = None,
    suite: Annotated[str | None, typer.Option(help="Suite of the harmful behaviors.")] = None,
    benign_suites: Annotated[
        str | None,
        typer.Option("--benign-suites", help="Comma-separated suites of benign behaviors."),
    ] = None,
    attacks: Annotated[
        str | None, typer.Option(help="Comma-separated static techniques (see: sparring attacks).")
    ] = None,
    attack_option: Annotated[
        list[str] | None,
        typer.Option("--attack-option", help="An attack's option, e.g. base64.layers=2 (repeat)."),
    ] = None,
    judge: Annotated[str | None, typer.Option(help="Judge spec (default: embedded).")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most N harmful and N benign behaviors.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Reply cap, tokens.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for selection and guards.")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Attempts in flight.")] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Family-wise error rate of the reported changes.")
    ] = None,
    adaptive: Annotated[
        str | None,
        typer.Option(
            help="Adaptive check: also run these red-team methods (comma-separated: pair, "
            "tap, crescendo, goat) against the target and every defense."
        ),
    ] = None,
    attacker: Annotated[
        str | None,
        typer.Option(help="Adaptive: attacker model spec (default: builtin/qwen2.5-coder-0.5b)."),
    ] = None,
    attacker_base_url: AttackerBaseUrlOpt = None,
    adaptive_limit: Annotated[
        int | None,
        typer.Option("--adaptive-limit", min=1, help="Adaptive: at most N harmful behaviors."),
    ] = None,
    adaptive_queries: Annotated[
        int | None,
        typer.Option(
            "--adaptive-queries", min=1, help="Adaptive: target queries per behavior and method."
        ),
    ] = None,
    max_requests: Annotated[
        int | None, typer.Option(min=1, help="Budget: requests (adaptive check included).")
    ] = None,
    time_limit: TimeLimitOpt = None,
    resume: ResumeOpt = None,
    out_dir: RunOutOpt = None,
    list_guards: Annotated[
        bool, typer.Option("--list", help="List the guards and their costs, then exit.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Compare defenses: ASR and over-refusal with intervals, latency and calls, Pareto;
    with --adaptive, the ASR of red-team attacks against each defense too."""
    if list_guards:
        table = Table("guard", "kind", "extra calls per request", "options", "what it does")
        for guard in api.guards():
            options = ", ".join(guard.Options.model_fields)
            table.add_row(guard.name, guard.kind, guard.cost, options, guard.description)
        out.print(table)
        return api.EXIT_OK
    flags: dict[str, Any] = {
        "target": target,
        "defenses": defenses,
        "suite": suite,
        "benign_suites": benign_suites,
        "attacks": attacks,
        "judge": judge,
        "limit": limit,
        "max_tokens": max_tokens,
        "seed": seed,
        "concurrency": concurrency,
        "alpha": alpha,
        "adaptive": adaptive,
        "attacker": attacker,
        "adaptive_limit": adaptive_limit,
        "max_requests": max_requests,
        "time_limit_s": time_limit,
    }
    fields = {k: v for k, v in flags.items() if v is not None}
    if base_url is not None:
        fields["target_options"] = {"base_url": base_url}
    if attacker_base_url is not None:
        fields["attacker_options"] = {"base_url": attacker_base_url}
    if adaptive_queries is not None:
        fields["adaptive_budgets"] = {"queries": adaptive_queries}
    if out_dir is not None:
        check_out_dir(out_dir)
    try:
        outcome = api.defend(
            fields,
            store_path,
            file=config_file,
            defense_options=defense_option or [],
            attack_options=attack_option or [],
            resume=resume,
            out_dir=out_dir,
            progress=progress,
            say=say_plain,
            console=out,
        )
    except api.RunFailedError as failed:
        err.print(f"[red]error:[/red] {escape(str(failed))}", highlight=False)
        err.print(f"resume with: sparring defend --resume {failed.run_id}")
        return failed.exit_code
    err.print(
        f"run {outcome.run_id}: {outcome.status}; reports in {outcome.files.html.parent}/ "
        "(defend.html, defend.json)"
    )
    if outcome.status != "finished":
        err.print(f"resume with: sparring defend --resume {outcome.run_id}")
    return api.EXIT_INTERRUPTED if outcome.status == "interrupted" else api.EXIT_OK
