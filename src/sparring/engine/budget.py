"""Limits on what a run may spend, and the meter that enforces them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sparring.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    """What a run may spend before it stops starting attempts; None means no limit.

    Requests are target turns (one per completion, failed or cached ones included); tokens
    are the target's prompt plus completion tokens. Attempts in flight when a limit is
    reached still finish, so tokens and time may overshoot by what they use; requests do
    not, because an attempt reserves its turns before it starts.
    """

    max_requests: int | None = None
    """Most model requests: every turn of multi-turn attempts, and helper calls."""
    max_tokens: int | None = None
    """Most target tokens, prompt and completion together."""
    time_limit_s: float | None = None
    """Seconds after the run starts past which no attempt is started."""

    def __post_init__(self) -> None:
        for name in ("max_requests", "max_tokens", "time_limit_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"budget {name} must be positive or None, got {value}")


class BudgetMeter:
    """Counts a run's spending and says whether one more attempt fits in its Budget."""

    def __init__(self, budget: Budget | None) -> None:
        self.budget = budget or Budget()
        self.requests = 0
        """Target requests made so far."""
        self.tokens = 0
        """Target tokens used so far (prompt plus completion)."""
        self._reserved = 0
        self._started = time.monotonic()

    def try_reserve(self, turns: int) -> bool:
        """Reserve ``turns`` requests for an attempt about to start; False if over budget."""
        limits = self.budget
        requests = self.requests + self._reserved + turns
        if limits.max_requests is not None and requests > limits.max_requests:
            return False
        if limits.max_tokens is not None and self.tokens >= limits.max_tokens:
            return False
        elapsed_s = time.monotonic() - self._started
        if limits.time_limit_s is not None and elapsed_s >= limits.time_limit_s:
            return False
        self._reserved += turns
        return True

    def settle(self, turns: int, requests: int, tokens: int) -> None:
        """Release an attempt's reservation of ``turns`` and count what it really spent."""
        self._reserved -= turns
        self.requests += requests
        self.tokens += tokens
