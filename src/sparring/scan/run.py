"""Running a scan: models checked, the run created, the plan executed by the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparring.attacks import Attack, HelperError, HelperRequest
from sparring.engine import (
    RunOutcome,
    limited_engine,
    model_executor,
    target_executor,
)
from sparring.judges import resolve_judge
from sparring.models import resolve_model
from sparring.scan.config import ScanConfig, concurrency_line, judge_settings
from sparring.scan.plan import (
    build_plan,
    helper_attempts,
    judge_spec,
    load_scan_behaviors,
    scan_attacks,
)
from sparring.store import Store
from sparring.types import AttemptSpec, Behavior, Completion, is_helper_attack


@dataclass(frozen=True)
class ScanResult:
    """What a finished (or stopped) scan left in the store."""

    run_id: str
    outcome: RunOutcome
    """How the target attempts went (the helper calls', when those were interrupted)."""
    helper: RunOutcome | None = None
    """How this call's helper calls went; None when the scan needed none."""


async def run_scan(
    config: ScanConfig,
    store: Store,
    *,
    resume: str | None = None,
    progress: bool = True,
    behaviors: Sequence[Behavior] | None = None,
    say: Callable[[str], None] | None = None,
) -> ScanResult:
    """Run (or resume) a scan into ``store``; the reports are rendered from the store after.

    Every model (target, helper, the judge's) passes its pre-flight check before the run is
    created, so a dead endpoint leaves nothing in the store. ``behaviors`` are those of
    ``load_scan_behaviors(config)``, when the caller has loaded them already (to check its
    input before it opens the store); ``say`` receives note lines (how a behaviors file
    was read, how many attempts run in flight). A resume runs the attempts that failed
    before again. ``config.target_options.max_concurrency`` is the scan's concurrency
    unless the user set it (see ScanConfig).
    Helper calls of model-driven attacks run first, as engine attempts of the run
    (``helper:NAME``) within the same budget; a resume does not ask them again.
    Raises RunFailedError when the first attempts all fail at the model.
    """
    if behaviors is None:
        behaviors = load_scan_behaviors(config, say)
    attacks = scan_attacks(config)
    target = resolve_model(config.target, config.target_options)
    helper = resolve_model(config.helper, config.helper_options) if config.helper else None
    judge = resolve_judge(judge_spec(config, attacks, behaviors), judge_settings(config))
    try:
        for model in (target, helper):
            if model is not None:
                await model.check()
        await judge.check()
        helper_id = helper.id if helper is not None else None
        # Planned once before the run exists, so bad input (a missing templates file) leaves
        # nothing in the store; prompts that wait for helper answers are planned later.
        plan = await build_plan(config, behaviors, attacks, helper_id=helper_id)
        requests = (
            helper_attempts(config, behaviors, attacks, helper.id) if helper is not None else {}
        )
        if resume is None:
            run_id = store.create_run(
                "scan",
                config.model_dump(mode="json"),
                config.seed,
                {
                    "target": config.target,
                    "judge": judge.id,
                    **({"helper": config.helper} if config.helper else {}),
                },
            )
            store.add_behaviors(run_id, behaviors)
        else:
            run_id = resume
            store.mark_running(run_id)  # refused while another live process runs it
            store.forget_errors(run_id)  # so the attempts that failed before run again
        if say is not None:
            say(concurrency_line(config))
        engine = limited_engine(store, run_id, config, progress=progress)
        helper_outcome = None
        if helper is not None and requests:
            helper_outcome = await engine.run(
                list(requests.values()),
                model_executor(helper, store=store),
                role="helper",
                last=False,
            )
            if helper_outcome.status == "interrupted":
                return ScanResult(run_id=run_id, outcome=helper_outcome, helper=helper_outcome)
            answers = helper_answers(store, run_id, requests)
            plan = await _realise(config, behaviors, attacks, helper.id, answers, store, run_id)
        executor = target_executor(
            target,
            [judge],
            {b.id: b for b in behaviors},
            store=store,
        )
        outcome = await engine.run(plan, executor)
    finally:
        await target.aclose()
        await judge.aclose()
        if helper is not None:
            await helper.aclose()
    return ScanResult(run_id=run_id, outcome=outcome, helper=helper_outcome)


def helper_answers(
    store: Store, run_id: str, requests: Mapping[HelperRequest, AttemptSpec]
) -> dict[HelperRequest, Completion]:
    """The stored helper completions of ``requests`` (those the run has made so far)."""
    stored = {
        a.spec.key: a.completions[-1]
        for a in store.iter_attempts(run_id)
        if is_helper_attack(a.spec.attack) and a.completions
    }
    return {r: stored[spec.key] for r, spec in requests.items() if spec.key in stored}


async def _realise(
    config: ScanConfig,
    behaviors: Sequence[Behavior],
    attacks: Mapping[str, Attack[Any]],
    helper_id: str,
    answers: Mapping[HelperRequest, Completion],
    store: Store,
    run_id: str,
) -> list[AttemptSpec]:
    """The plan with the helper's answers; a failed helper call marks the run failed (its
    attempt is stored, and a resume asks again) and raises HelperError."""
    try:
        return await build_plan(config, behaviors, attacks, helper_id=helper_id, answers=answers)
    except HelperError:
        store.finish_run(run_id, "failed")
        raise
