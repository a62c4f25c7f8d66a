"""User-facing errors. Each carries one line that names the culprit and the remedy; the CLI
prints that line and exits with the error's ``exit_code``, without a traceback.

Exit codes, the same for every command: 0 success; 1 a gate failed (``--fail-above``, a
regression found by ``compare``); 2 a usage or input error (flag, config, data file, store);
3 a model or endpoint failed (pre-flight, or every attempt of a run errored); 130
interrupted (Ctrl-C or SIGTERM; the run is resumable).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_INTERRUPTED = 130


class SparringError(Exception):
    """Base of every error a user can cause and fix; ``str(err)`` is the one line to show."""

    exit_code = EXIT_USAGE


class ConfigError(SparringError):
    """A bad flag, config field or argument value."""


class DataError(SparringError):
    """A data file that cannot be read: missing, malformed row, unknown column."""


class ModelNotFoundError(SparringError):
    """A model spec that names no known provider or model."""


class MissingPackageError(SparringError):
    """An optional dependency needed for the requested feature is not installed."""

    def __init__(self, feature: str, install: str) -> None:
        super().__init__(f"{feature} needs packages that are not installed: pip install {install}")


class EndpointError(SparringError):
    """A model endpoint that cannot be reached or rejects every request."""

    exit_code = EXIT_MODEL


class RunFailedError(SparringError):
    """A run that could do none of its work: every attempt so far failed at the model."""

    exit_code = EXIT_MODEL

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        """The failed run, which a resume can continue once the cause is fixed."""


class StoreError(SparringError):
    """A run store that cannot be opened, or a run id that is not in it."""


class StageStopped(Exception):
    """A stage of a multi-stage run (DART) ended early by Ctrl-C, SIGTERM or a budget;
    what finished is stored and ``run_id`` can be resumed."""

    def __init__(self, status: str, run_id: str) -> None:
        super().__init__(status)
        self.run_id = run_id
