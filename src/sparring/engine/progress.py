"""Progress of a run on stderr: counts, rate and ETA only, never prompts or responses."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PLAIN_INTERVAL_S = 10.0
"""Seconds between plain progress lines when stderr is not a terminal."""


class Reporter:
    """Receives a run's progress; this base class shows nothing (``progress=False``)."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        """Attempts this run will try (those already stored excluded)."""
        self.finished = 0
        """Attempts finished so far, errors included."""
        self.errors = 0
        """Attempts that finished with an error."""
        self._started = time.monotonic()

    def advance(self, error: bool) -> None:
        """Count one finished attempt."""
        self.finished += 1
        self.errors += error

    def tick(self) -> None:
        """Called about every half second by the engine; lets reporters redraw."""

    def close(self) -> None:
        """The run is over; show the final state."""

    @property
    def rate(self) -> float:
        """Finished attempts per second since the run started."""
        elapsed = time.monotonic() - self._started
        return self.finished / elapsed if elapsed > 0 else 0.0


class PlainReporter(Reporter):
    """A line on stderr every PLAIN_INTERVAL_S seconds and at the end, for logs and CI."""

    def __init__(self, label: str, total: int) -> None:
        super().__init__(label, total)
        self._last_line = time.monotonic()

    def tick(self) -> None:
        if time.monotonic() - self._last_line >= PLAIN_INTERVAL_S:
            self._write()

    def close(self) -> None:
        self._write()

    def _write(self) -> None:
        self._last_line = time.monotonic()
        rate = self.rate
        eta = f"{(self.total - self.finished) / rate:.0f} s" if rate > 0 else "unknown"
        print(
            f"{self.label}: {self.finished}/{self.total} attempts, {self.errors} errors, "
            f"{rate:.1f}/s, ETA {eta}",
            file=sys.stderr,
            flush=True,
        )


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if speed is None else f"{speed:.1f}/s", style="progress.data.speed")


class RichReporter(Reporter):
    """A live progress bar on ``console`` (a terminal's stderr unless given)."""

    def __init__(self, label: str, total: int, console: Console | None = None) -> None:
        super().__init__(label, total)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[errors]} errors"),
            console=console or Console(stderr=True),
        )
        self._task = self._progress.add_task(label, total=total, errors=0)
        self._progress.start()

    def advance(self, error: bool) -> None:
        super().advance(error)
        self._progress.update(self._task, advance=1, errors=self.errors)

    def close(self) -> None:
        self._progress.stop()


def make_reporter(enabled: bool, label: str, total: int) -> Reporter:
    """The reporter for this terminal: a bar on a TTY, plain lines otherwise, or none."""
    if not enabled:
        return Reporter(label, total)
    if sys.stderr.isatty():
        return RichReporter(label, total)
    return PlainReporter(label, total)
