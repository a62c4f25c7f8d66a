"""User-facing errors. Each carries one line that names the culprit and the remedy; the CLI
prints that line and exits non-zero, without a traceback."""

from __future__ import annotations


class SparringError(Exception):
    """Base of every error a user can cause and fix; ``str(err)`` is the one line to show."""

    exit_code = 2


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


class StoreError(SparringError):
    """A run store that cannot be opened, or a run id that is not in it."""
