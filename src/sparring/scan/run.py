"""Running a scan: models checked, the run created, the plan executed by the engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sparring.engine import Budget, Engine, RunOutcome, target_executor
from sparring.judges import resolve_judge
from sparring.models import resolve_model
from sparring.scan.config import ScanConfig
from sparring.scan.plan import build_plan, load_scan_behaviors
from sparring.store import RunStore
from sparring.types import Behavior


@dataclass(frozen=True)
class ScanResult:
    """What a finished (or stopped) scan left in the store."""

    run_id: str
    outcome: RunOutcome


async def run_scan(
    config: ScanConfig,
    store: RunStore,
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
    was read). A resume runs the attempts that failed before again.
    Raises RunFailedError when the first attempts all fail at the model.
    """
    if behaviors is None:
        behaviors = load_scan_behaviors(config, say)
    target = resolve_model(config.target, config.target_options)
    helper = resolve_model(config.helper) if config.helper else None
    judge = resolve_judge(config.judge)
    try:
        for model in (target, helper):
            if model is not None:
                await model.check()
        await judge.check()
        plan = await build_plan(config, behaviors, helper)
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
        engine = Engine(
            store,
            run_id,
            concurrency=config.concurrency,
            budget=Budget(max_requests=config.max_requests, time_limit_s=config.time_limit_s),
            progress=progress,
        )
        executor = target_executor(
            target,
            [judge],
            {b.id: b for b in behaviors},
            store=store,
        )
        outcome = await engine.run(plan, executor, retry_errors=resume is not None)
    finally:
        await target.aclose()
        await judge.aclose()
        if helper is not None:
            await helper.aclose()
    return ScanResult(run_id=run_id, outcome=outcome)
