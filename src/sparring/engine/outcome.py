"""What one call of Engine.run did: how it ended and what it counted."""

from __future__ import annotations

from dataclasses import dataclass

from sparring.store import RunStatus


@dataclass(frozen=True)
class RunOutcome:
    """How a call to Engine.run went. Counts are attempts of the plan; they add up:
    planned = skipped_existing + duplicates + done + errors + not_started."""

    status: RunStatus
    """finished, budget, interrupted or failed."""
    planned: int
    """Attempts in the plan given to run()."""
    skipped_existing: int
    """Attempts already in the store (from an earlier run of the plan), not run again."""
    duplicates: int
    """Specs whose key repeats an earlier spec of the plan; run once."""
    done: int
    """Attempts stored by this call without error."""
    errors: int
    """Attempts stored by this call with an error (failed request or executor exception)."""
    exceptions: int
    """Of the errors, those where the executor raised (bugs, not model failures)."""
    not_started: int
    """Attempts this call did not store: never started, cancelled, or not yet judged when
    the run stopped; a resume runs them."""
    elapsed_s: float
    """Wall time of the call, seconds."""
    requests: int
    """Target requests made by this call (turns, failed and cached ones included)."""
    tokens: int
    """Target tokens used by this call, prompt and completion."""
