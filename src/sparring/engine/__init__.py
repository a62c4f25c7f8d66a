"""Runs a plan of attempts: bounded concurrency, batched store writes, budgets, graceful
Ctrl-C, progress and resume.

    executor = target_executor(target, judges, behaviors, store=store)
    outcome = await Engine(store, run_id, concurrency=16).run(plan, executor)
"""

from sparring.engine.budget import Budget
from sparring.engine.executor import Executor, model_executor, target_executor
from sparring.engine.limits import RunLimits, limited_engine
from sparring.engine.outcome import RunOutcome
from sparring.engine.runner import Engine

__all__ = [
    "Budget",
    "Engine",
    "Executor",
    "RunLimits",
    "RunOutcome",
    "limited_engine",
    "model_executor",
    "target_executor",
]
