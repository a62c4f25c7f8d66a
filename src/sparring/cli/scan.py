"""``sparring scan``, ``report``, ``compare`` and ``rejudge``: the scan and its reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from sparring import api
from sparring.cli.common import (
    DEFAULT_STORE,
    BaseUrlOpt,
    FailAboveOpt,
    OutOpt,
    ResumeOpt,
    RunOutOpt,
    SeedOpt,
    StoreOpt,
    TimeLimitOpt,
    app,
    check_out_dir,
    err,
    open_store,
    out,
    say_plain,
)


@app.command()
def scan(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML file with scan fields.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Model spec under test.")] = None,
    base_url: BaseUrlOpt = None,
    judge_base_url: Annotated[
        str | None, typer.Option("--judge-base-url", help="Server root of an LLM judge's model.")
    ] = None,
    helper_base_url: Annotated[
        str | None, typer.Option("--helper-base-url", help="Server root of the helper model.")
    ] = None,
    model_option: Annotated[
        list[str] | None,
        typer.Option(
            "--model-option",
            help="A model role's option, e.g. judge.api_key_env=KEY or target.timeout_s=30.",
        ),
    ] = None,
    system_prompt: Annotated[
        str | None, typer.Option("--system-prompt", help="System prompt for the target.")
    ] = None,
    suite: Annotated[str | None, typer.Option(help="Behavior suite (see: sparring data).")] = None,
    behaviors: Annotated[
        str | None, typer.Option(help="Behavior file, URL or hf:// path instead of a suite.")
    ] = None,
    behaviors_format: Annotated[
        str | None,
        typer.Option("--format", help="Loader for --behaviors (default: detected)."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="Columns of a --behaviors file, e.g. text=prompt,category=topic,id=id."),
    ] = None,
    attacks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated techniques or family patterns such as injection.* "
            "(see: sparring attacks)."
        ),
    ] = None,
    attack_option: Annotated[
        list[str] | None,
        typer.Option(
            "--attack-option", help="An attack's option, e.g. translation.language=zu (repeat)."
        ),
    ] = None,
    templates: Annotated[
        str | None, typer.Option(help="Shorthand for --attack-option template-file.file=PATH.")
    ] = None,
    judge: Annotated[str | None, typer.Option(help="Judge spec (default: embedded).")] = None,
    judge_band: Annotated[
        str | None,
        typer.Option(help="p_unsafe band LOW,HIGH an escalate: judge sends to its second judge."),
    ] = None,
    helper: Annotated[
        str | None, typer.Option(help="Helper model spec for translation attacks.")
    ] = None,
    samples: Annotated[int | None, typer.Option(min=1, help="Samples per attempt.")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most N harmful and N benign behaviors.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Reply cap, tokens.")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0)] = None,
    seed: SeedOpt = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Attempts in flight.")] = None,
    max_requests: Annotated[int | None, typer.Option(min=1, help="Budget: requests.")] = None,
    time_limit: TimeLimitOpt = None,
    resume: ResumeOpt = None,
    out_dir: RunOutOpt = None,
    redact: Annotated[bool, typer.Option(help="Hide prompts and responses in the HTML.")] = False,
    fail_above: FailAboveOpt = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Scan a model: behaviors × attack techniques → target → judge → reports."""
    flags: dict[str, Any] = {
        "target": target,
        "system_prompt": system_prompt,
        "suite": suite,
        "behaviors": behaviors,
        "behaviors_format": behaviors_format,
        "columns": columns,
        "attacks": attacks,
        "judge": judge,
        "judge_band": judge_band,
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
    fields = {k: v for k, v in flags.items() if v is not None}
    fields.update(api.role_options(model_option or []))
    urls = {"target": base_url, "judge": judge_base_url, "helper": helper_base_url}
    for role, url in urls.items():
        if url is not None:
            fields.setdefault(f"{role}_options", {})["base_url"] = url
    if out_dir is not None:
        check_out_dir(out_dir)
    options = [*(attack_option or []), *([f"template-file.file={templates}"] if templates else [])]
    if resume is not None and (fields or options or config_file is not None):
        raise api.ConfigError("--resume reuses the stored config; drop the other scan flags")
    config = loaded = None
    if resume is None:  # the input is checked before the store is opened (or created)
        config = api.scan_config(fields, config_file, options)
        loaded = api.scan_behaviors(config, say_plain)
    with open_store(store_path) as store:
        try:
            result = api.scan(
                config, store, resume=resume, behaviors=loaded, progress=progress, say=say_plain
            )
        except api.RunFailedError as failed:
            err.print(f"[red]error:[/red] {escape(str(failed))}", highlight=False)
            err.print(f"resume with: sparring scan --resume {failed.run_id}")
            return failed.exit_code
        folder = check_out_dir(out_dir or Path("sparring-out") / result.run_id)
        files, gate = api.report(
            store, result.run_id, folder, redact=redact, fail_above=fail_above, console=out
        )
    err.print(
        f"run {result.run_id}: {result.outcome.status}; reports in {files.html.parent}/ "
        f"(report.html, report.json, junit.xml)"
    )
    if result.outcome.status == "interrupted":
        err.print(f"resume with: sparring scan --resume {result.run_id}")
        return api.EXIT_INTERRUPTED
    return api.EXIT_GATE if gate is not None and not gate.passed else api.EXIT_OK


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="Run id (sparring runs list).")],
    out_dir: OutOpt = None,
    redact: Annotated[bool, typer.Option(help="Hide prompts and responses in the HTML.")] = False,
    fail_above: FailAboveOpt = None,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge", help="Count this judge's stored verdicts, e.g. refusal-rules@1 (a judge id)."
        ),
    ] = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Re-render the reports of a stored run (no model is queried)."""
    with open_store(store_path, existing=True) as store:
        store.get_run(run_id, kind="scan")
        folder = check_out_dir(out_dir or Path("sparring-out") / run_id)
        files, gate = api.report(
            store, run_id, folder, redact=redact, fail_above=fail_above, console=out, judge=judge
        )
    err.print(f"reports in {files.html.parent}/")
    return api.EXIT_GATE if gate is not None and not gate.passed else api.EXIT_OK


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="Baseline run id, or a report.json path.")],
    run_b: Annotated[str, typer.Argument(help="Candidate run id, or a report.json path.")],
    alpha: Annotated[float, typer.Option(help="Family-wise error rate (Tarone).")] = 0.05,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> int:
    """Show which rates changed significantly between two runs; exit 1 on a regression."""
    with open_store(store_path, existing=True) as store:
        comparison = api.compare(store, run_a, run_b, alpha=alpha)
    api.render_comparison(comparison, out)
    if json_out is not None:
        api.write_private(json_out, json.dumps(api.comparison_to_json(comparison), indent=2))
    regressed = any(change.regression for change in comparison.changes)
    return api.EXIT_GATE if regressed else api.EXIT_OK


@app.command()
def rejudge(
    run_id: Annotated[str, typer.Argument(help="Run to re-score (its target is not queried).")],
    judge: Annotated[
        str, typer.Option("--judge", help="Judge spec, e.g. escalate:embedded,harmbench:MODEL.")
    ],
    base_url: BaseUrlOpt = None,
    store_path: StoreOpt = DEFAULT_STORE,
) -> None:
    """Re-score a stored run with another judge; verdicts are added beside the old ones."""
    with open_store(store_path, existing=True) as store:
        n = api.rejudge(store, run_id, judge, api.model_options(base_url=base_url))
        render = {"dart": "sparring dart report", "redteam": "sparring redteam --resume"}.get(
            store.get_run(run_id).kind, "sparring report"
        )
    err.print(f"{n} attempts re-scored; render with: {render} {run_id}")
