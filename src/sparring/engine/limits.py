"""An Engine sized and budgeted by a command's config (scan, red-team, defend): the three
settings every run command shares."""

from __future__ import annotations

from typing import Protocol

from sparring.engine.budget import Budget
from sparring.engine.runner import Engine
from sparring.store import Store


class RunLimits(Protocol):
    """A config's requests in flight and budgets."""

    @property
    def concurrency(self) -> int: ...

    @property
    def max_requests(self) -> int | None: ...

    @property
    def time_limit_s(self) -> float | None:
        """Wall time, seconds."""
        ...


def limited_engine(store: Store, run_id: str, limits: RunLimits, *, progress: bool) -> Engine:
    """An Engine for ``run_id`` with ``limits``' concurrency, request budget and time limit."""
    return Engine(
        store,
        run_id,
        concurrency=limits.concurrency,
        budget=Budget(max_requests=limits.max_requests, time_limit_s=limits.time_limit_s),
        progress=progress,
    )
