"""The public Python API: what the command line does, callable from Python.

Every function here is synchronous and runs its own event loop (from async code, use the
coroutines in ``sparring.scan``, ``sparring.dart`` and ``sparring.judges``). Importing this
module is cheap: each function imports what it needs when called. User mistakes raise
``SparringError`` subclasses whose message is one line naming the culprit and the fix; the
exit codes the CLI maps them to are the ``EXIT_*`` constants.
"""

# Longer than 400 lines because it is the whole public surface in one place: one short
# function per operation, each importing what it needs when called.

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparring.errors import (
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_USAGE,
    ConfigError,
    EndpointError,
    RunFailedError,
    SparringError,
    StageStopped,
)
from sparring.store import RunRecord, RunStore
from sparring.version import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from sparring.dart.config import DartConfig
    from sparring.dart.export import DartExport
    from sparring.defenses.base import Guard
    from sparring.defenses.command import DefendOutcome
    from sparring.doctor import CheckResult
    from sparring.judges.calibration import JudgeEvaluation
    from sparring.judges.training import TrainingRecord
    from sparring.models.options import ModelOptions
    from sparring.models.zoo import ZooStatus
    from sparring.redteam import RedteamOutcome
    from sparring.report import Comparison, GateResult
    from sparring.scan import ReportFiles, ScanConfig, ScanResult
    from sparring.types import Behavior, Completion

__all__ = [
    "EXIT_GATE",
    "EXIT_INTERRUPTED",
    "EXIT_MODEL",
    "EXIT_OK",
    "EXIT_USAGE",
    "ROLES",
    "AttackInfo",
    "ConfigError",
    "EndpointError",
    "RunFailedError",
    "RunRecord",
    "RunStore",
    "SparringError",
    "StageStopped",
    "__version__",
    "attacks",
    "backends",
    "chat",
    "compare",
    "comparison_to_json",
    "dart",
    "dart_config",
    "dart_export",
    "dart_report",
    "data_formats",
    "data_sources",
    "default_store",
    "defend",
    "doctor",
    "doctor_line",
    "guards",
    "judge_eval",
    "judge_train",
    "judges",
    "model_options",
    "models",
    "open_store",
    "redteam",
    "rejudge",
    "render_comparison",
    "report",
    "role_options",
    "save_judge_card",
    "scan",
    "scan_behaviors",
    "scan_config",
    "view",
    "write_private",
]

Say = Callable[[str], None]


def default_store() -> Path:
    """The run store used when none is named: ``$SPARRING_STORE`` or
    ``sparring-runs/runs.sqlite``."""
    from sparring.paths import default_store as configured

    return configured()


def open_store(path: Path | str) -> RunStore:
    """The run store at ``path``, created and migrated as needed; use it as a context
    manager."""
    from sparring.store import RunStore

    return RunStore(path)


def write_private(path: Path, text: str) -> Path:
    """Write a file readable by its owner only (reports hold harmful text)."""
    from sparring.report import write_private as write

    return write(path, text)


def model_options(**fields: Any) -> ModelOptions:
    """Backend settings for a model role (base_url, api_key_env, timeout_s, ...)."""
    from sparring.models.options import ModelOptions

    return ModelOptions(**fields)


# -- scan --------------------------------------------------------------------------------


def scan_config(
    fields: Mapping[str, Any], file: Path | None = None, attack_options: Sequence[str] = ()
) -> ScanConfig:
    """A validated scan config: ``fields`` over the YAML ``file``'s (nested option mappings
    such as ``target_options`` merged field by field), then ``attack_options`` flags
    (``NAME.OPTION=VALUE``) merged into the attacks."""
    from sparring.config_files import merge_fields, read_yaml
    from sparring.scan import make_config
    from sparring.scan.config import with_attack_options

    values = merge_fields(read_yaml(file), dict(fields)) if file else dict(fields)
    if attack_options:
        values["attacks"] = with_attack_options(
            values.get("attacks"), attack_options, values.get("suite")
        )
    return make_config(values, source=str(file) if file else "command line")


ROLES = ("target", "judge", "helper")
"""The model roles of a scan; each has its ``ROLE_options`` (ModelOptions) field."""


def role_options(flags: Sequence[str]) -> dict[str, dict[str, str]]:
    """``--model-option ROLE.FIELD=VALUE`` flags as scan fields, e.g. ``["judge.timeout_s=30"]``
    → ``{"judge_options": {"timeout_s": "30"}}``; the values are validated with the config."""
    from sparring.registry import option_flags

    options = option_flags(list(flags), "--model-option")
    unknown = sorted(set(options) - set(ROLES))
    if unknown:
        raise ConfigError(
            f"--model-option {unknown[0]}.…: no such model role; use one of: {', '.join(ROLES)}"
        )
    return {f"{role}_options": values for role, values in options.items()}


def scan_behaviors(config: ScanConfig, say: Say | None = None) -> list[Behavior]:
    """The behaviors a scan of ``config`` runs; loading them first checks the input
    before anything is stored."""
    from sparring.scan import load_scan_behaviors

    return load_scan_behaviors(config, say)


def scan(
    config: ScanConfig | None,
    store: RunStore,
    *,
    resume: str | None = None,
    behaviors: Sequence[Behavior] | None = None,
    progress: bool = False,
    say: Say | None = None,
) -> ScanResult:
    """Run a scan of ``config`` into ``store``, or resume the stored run ``resume`` with its
    stored config (then ``config`` must be None). Raises RunFailedError when the target
    answers nothing."""
    from sparring.scan import make_config, run_scan

    if resume is not None:
        if config is not None:
            raise ConfigError("a resumed scan reuses its stored config; pass no other")
        stored = store.get_run(resume, kind="scan").config
        config = make_config(stored, source=f"run {resume}")
    elif config is None:
        raise ConfigError("scan needs a config, or a run id to resume")
    return asyncio.run(
        run_scan(config, store, resume=resume, progress=progress, behaviors=behaviors, say=say)
    )


def report(
    store: RunStore,
    run_id: str,
    out_dir: Path,
    *,
    redact: bool = False,
    fail_above: float | None = None,
    console: Console | None = None,
    judge: str | None = None,
) -> tuple[ReportFiles, GateResult | None]:
    """Write a stored scan's HTML, JSON and JUnit reports into ``out_dir`` and print its
    summary on ``console``; returns the files and the ``fail_above`` gate's result.

    ``judge`` is the id of a judge whose verdicts the run holds (``rejudge`` adds them, e.g.
    ``refusal-rules@1``); its labels then count instead of the scan's judge's. An id the run
    does not hold raises ConfigError naming those it does.
    """
    from sparring.scan import write_reports

    store.get_run(run_id, kind="scan")
    return write_reports(
        store, run_id, out_dir, redact=redact, fail_above=fail_above, console=console, judge=judge
    )


def compare(store: RunStore, run_a: str, run_b: str, *, alpha: float = 0.05) -> Comparison:
    """Which rates changed significantly from ``run_a`` to ``run_b`` (run ids, or paths
    of report.json files), family-wise error rate ``alpha`` (Tarone)."""
    from sparring.report import compare as compare_summaries
    from sparring.report import load_json
    from sparring.scan import load_scan

    def summary(ref: str) -> Any:
        if ref.endswith(".json") and Path(ref).is_file():
            return load_json(ref)
        store.get_run(ref, kind="scan")
        return load_scan(store, ref)[1]

    return compare_summaries(summary(run_a), summary(run_b), alpha=alpha)


def render_comparison(comparison: Comparison, console: Console) -> None:
    """Print a comparison: the rates that changed, regressions first."""
    from sparring.report import render_comparison as render

    render(comparison, console)


def comparison_to_json(comparison: Comparison) -> dict[str, Any]:
    """A comparison as a JSON-ready dict."""
    from sparring.report import comparison_to_json as to_json

    return to_json(comparison)


def rejudge(store: RunStore, run_id: str, judge: str, options: ModelOptions | None = None) -> int:
    """Score a stored scan's successful attempts (a DART run's held-out evaluations, a
    red-team run's target replies) again with ``judge`` (its model settings in
    ``options``); the verdicts are added beside the old ones. Returns how many."""
    from sparring.dart.evaluation import is_evaluation
    from sparring.judges import JudgeInput, resolve_judge
    from sparring.judges.resolve import JudgeOptions
    from sparring.models.options import ModelOptions
    from sparring.types import is_helper_attack

    kind = store.get_run(run_id).kind
    if kind not in ("scan", "dart", "redteam"):
        raise ConfigError(
            f"run {run_id} is a {kind} run; rejudge re-scores scan, DART and red-team runs"
        )

    async def rescore() -> int:
        behaviors = {b.id: b for b in store.behaviors(run_id)}
        attempts = [
            a
            for a in store.attempts(run_id)
            if a.error is None
            and not is_helper_attack(a.spec.attack)
            and (kind != "dart" or is_evaluation(a.spec))
        ]
        instrument = resolve_judge(judge, JudgeOptions(model=options or ModelOptions()))
        try:
            await instrument.check()
            verdicts = await instrument.judge(
                [
                    JudgeInput(
                        behavior=behaviors[a.spec.behavior_id],
                        transcript=tuple(a.transcript),
                        meta=a.spec.meta,
                    )
                    for a in attempts
                ]
            )
        finally:
            await instrument.aclose()
        for attempt, verdict in zip(attempts, verdicts, strict=True):
            store.add_verdicts(run_id, attempt.spec.key, [verdict])
        return len(verdicts)

    return asyncio.run(rescore())


# -- DART --------------------------------------------------------------------------------


def dart_config(fields: Mapping[str, Any], file: Path) -> DartConfig:
    """A validated DART config: ``fields`` (e.g. ``method``) over the YAML ``file``'s."""
    from sparring.dart.config import load_dart_config

    return load_dart_config(file, dict(fields))


def dart(
    config: DartConfig | None,
    store: RunStore,
    *,
    resume: str | None = None,
    progress: bool = False,
    say: Say | None = None,
) -> str:
    """Run the DART loop of ``config`` into ``store`` (or resume the stored run
    ``resume``); returns the run id. Ctrl-C raises ``sparring.dart.loop.StageStopped``
    once what finished is stored."""
    from sparring.dart.config import dart_config as validate
    from sparring.dart.loop import run_dart

    if resume is not None:
        stored = store.get_run(resume, kind="dart").config
        config = validate(stored, source=f"run {resume}")
    elif config is None:
        raise ConfigError("sparring dart needs --config FILE (or --resume RUN_ID)")
    return asyncio.run(
        run_dart(config, store, resume=resume, progress=progress, say=say or (lambda line: None))
    )


def dart_report(
    store: RunStore, run_ids: Sequence[str], out_dir: Path, console: Console | None = None
) -> Path:
    """The DART table of stored runs (base from the first) on ``console``, and
    ``dart.html`` and ``dart.json`` in ``out_dir``; returns ``out_dir``."""
    from sparring.dart import report as dart_tables

    runs = [dart_tables.load_method_run(store, run_id) for run_id in run_ids]
    if console is not None:
        dart_tables.render_console(runs, console)
    dart_tables.write_html(out_dir / "dart.html", runs)
    write_private(out_dir / "dart.json", json.dumps(dart_tables.to_json(runs), indent=2))
    return out_dir


def dart_export(store: RunStore, run_id: str, out_dir: Path, say: Say | None = None) -> DartExport:
    """Write the hardened target of the DART run ``run_id`` into the new (or empty) folder
    ``out_dir``: ``model.gguf`` (base with the last evaluated round's adapter merged in),
    ``adapter.gguf`` with ``adapter.json`` (its base named by SHA-256), and ``MODEL_CARD.md``
    with ``card.json`` (the run's table). Its ``spec`` (``llamacpp/…/model.gguf``) works
    wherever a model spec does. ConfigError when the run trained no target adapter."""
    from sparring.dart.export import export_run

    return export_run(store, run_id, out_dir, say or (lambda line: None))


# -- models and judges -------------------------------------------------------------------


def chat(
    spec: str,
    prompt: str,
    *,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float = 0.0,
    options: ModelOptions | None = None,
) -> Completion:
    """One reply of the model ``spec`` to ``prompt``; EndpointError when it failed."""
    from sparring.models import resolve_model
    from sparring.types import GenerationParams, Message

    async def once() -> Completion:
        async with resolve_model(spec, options) as model:
            messages = [Message(role="system", content=system)] if system else []
            messages.append(Message(role="user", content=prompt))
            params = GenerationParams(max_tokens=max_tokens, temperature=temperature)
            [reply] = await model.generate([messages], params)
        if reply.error is not None:
            raise EndpointError(f"{spec}: {reply.error}")
        return reply

    return asyncio.run(once())


def judge_eval(
    data: Path | None,
    judge: str = "embedded",
    options: ModelOptions | None = None,
    *,
    store: RunStore | None = None,
    run_id: str | None = None,
) -> JudgeEvaluation:
    """Measure ``judge`` against the human labels in ``data``, or with ``store`` against
    those people gave in ``sparring view`` (of run ``run_id``, or of every run).
    RunFailedError when it could score none of the items (a dead endpoint), so no card is
    made of that."""
    from sparring.judges import evaluate_judge_async, load_labelled, resolve_judge
    from sparring.judges.resolve import JudgeOptions
    from sparring.models.options import ModelOptions

    if data is not None and store is None:
        items = load_labelled(data)
    elif store is not None and data is None:
        from sparring.view import labelled_items

        if run_id is not None:
            store.get_run(run_id)
        items = labelled_items(store, run_id)
    else:
        raise ConfigError("judge eval needs either --data FILE or --from-store, not both")
    instrument = resolve_judge(judge, JudgeOptions(model=options or ModelOptions()))

    async def measure() -> JudgeEvaluation:
        try:
            await instrument.check()
            return await evaluate_judge_async(instrument, items)
        finally:
            await instrument.aclose()

    result = asyncio.run(measure())
    if result.unscorable == result.n:
        raise RunFailedError(
            f"{result.judge_id} could score none of the {result.n} items of "
            f"{data or 'the store labels'}; no card "
            "saved. Check the judge's model and endpoint with: sparring doctor",
            run_id="",
        )
    return result


def save_judge_card(result: JudgeEvaluation) -> Path:
    """Keep an evaluation as its judge's card, shown beside the rates it produces."""
    from sparring.judges import save_card

    return save_card(result)


def judge_train(out: Path, data_dir: Path | None, seed: int, command: str) -> TrainingRecord:
    """Train the embedded judge's head on the GPTFuzz and XSTest labels in ``data_dir``."""
    from sparring.data import data_dir as default_data_dir
    from sparring.judges.training import train_embedded_judge

    return train_embedded_judge(data_dir or default_data_dir(), out, seed, command=command)


# -- catalogues --------------------------------------------------------------------------


@dataclass(frozen=True)
class AttackInfo:
    """One attack technique as the catalogue lists it."""

    name: str
    family: str
    needs_helper: bool
    description: str
    options: tuple[str, ...]
    """Names of the options it takes (``--attack-option NAME.OPTION=VALUE``)."""


def attacks() -> list[AttackInfo]:
    """Every registered attack technique, plugins' included, by name."""
    from sparring.attacks import ATTACKS

    return [
        AttackInfo(
            name, cls.family, cls.needs_helper, cls.description, tuple(cls.Options.model_fields)
        )
        for name, cls in ATTACKS.items()
    ]


def models() -> list[ZooStatus]:
    """The packaged model zoo, installed or not."""
    from sparring.models import zoo

    return zoo.status()


def backends() -> dict[str, str]:
    """Model providers a spec can name (``PROVIDER/MODEL``), plugins' included, name →
    one-line description."""
    from sparring.models.backends import backends as registered

    return {entry.name: entry.description for entry in registered()}


def data_sources() -> dict[str, str]:
    """Behavior suites a scan can use (``--suite``), name → one-line description."""
    from sparring.data.suites import suites

    return suites()


def data_formats() -> dict[str, str]:
    """Formats a ``--behaviors`` file can be read in (``--format``), plugins' included."""
    from sparring.data.registry import formats

    return formats()


def judges() -> dict[str, str]:
    """Judge forms a judge spec can start with, name → how it is written."""
    from sparring.judges.registry import JUDGE_FORMS

    return {name: form.usage for name, form in JUDGE_FORMS.items()}


def doctor(
    store: Path,
    *,
    model: str | None = None,
    base_url: str | None = None,
    say: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Check this machine one line at a time (see ``sparring.doctor``)."""
    from sparring.doctor import run_checks

    return run_checks(store=store, base_url=base_url, model=model, say=say)


def doctor_line(result: CheckResult) -> str:
    """One check's result as a line: status, name, detail and the fix."""
    from sparring.doctor import format_result

    return format_result(result)


# -- red-team ----------------------------------------------------------------------------


def redteam(
    fields: Mapping[str, Any],
    store: Path,
    *,
    file: Path | None = None,
    resume: str | None = None,
    out_dir: Path | None = None,
    redact: bool = False,
    fail_above: float | None = None,
    console: Console | None = None,
    say: Say | None = None,
) -> RedteamOutcome:
    """Run (or resume) a red-team campaign of ``fields`` (over the YAML ``file``'s) into the
    store at ``store`` (checked before it is opened); print its summary on ``console``
    and write ``redteam.json`` into ``out_dir`` (see ``sparring.redteam.redteam_command``)."""
    from sparring.redteam import redteam_command

    return redteam_command(
        fields,
        store,
        file=file,
        resume=resume,
        out_dir=out_dir,
        redact=redact,
        fail_above=fail_above,
        console=console,
        say=say,
    )


# -- viewer ------------------------------------------------------------------------------


def view(
    store: Path, *, host: str, port: int, reviewer: str | None = None, say: Say | None = None
) -> None:
    """Serve the local web viewer of ``store`` at ``http://host:port/`` until Ctrl-C: runs,
    attempts, comparisons and human review (see ``sparring.view``). ``reviewer`` names who
    labels (default: the user name); ``say`` gets the address and any warning."""
    import getpass

    from sparring.view import serve

    who = reviewer or getpass.getuser()
    serve(store, host=host, port=port, reviewer=who, say=say or (lambda line: None))


# -- defend ------------------------------------------------------------------------------


def defend(
    fields: Mapping[str, Any],
    store: Path,
    *,
    file: Path | None = None,
    defense_options: Sequence[str] = (),
    attack_options: Sequence[str] = (),
    resume: str | None = None,
    out_dir: Path | None = None,
    progress: bool = False,
    say: Say | None = None,
    console: Console | None = None,
) -> DefendOutcome:
    """Measure defenses: the same attacks and benign prompts against the target with no
    guard and behind each defense of ``fields`` (over the YAML ``file``'s), in one run in
    the store at ``store`` (or resume the stored run ``resume``); writes ``defend.json`` and
    ``defend.html`` into ``out_dir`` (default ``sparring-out/RUN_ID``) and prints the table
    on ``console``. ``defense_options`` and ``attack_options`` are ``NAME.OPTION=VALUE``
    flags. With ``fields["adaptive"]`` (e.g. ``"pair,tap"``) the red-team methods named also
    attack every arm, each in a ``redteam`` run of the same store linked to this one, and a
    resume continues them. The input is checked before the store is opened. See
    ``sparring.defenses.command`` and ``sparring.defenses.adaptive``."""
    from sparring.defenses.command import defend_command

    return defend_command(
        fields,
        store,
        file=file,
        defense_options=defense_options,
        attack_options=attack_options,
        resume=resume,
        out_dir=out_dir,
        progress=progress,
        say=say,
        console=console,
    )


def guards() -> list[type[Guard[Any]]]:
    """Every registered guard (a defense's building block), plugins' included, by name:
    ``name``, ``kind``, ``cost`` (extra model calls per request), ``description`` and
    ``Options``."""
    from sparring.defenses.registry import guard_classes

    return guard_classes()
