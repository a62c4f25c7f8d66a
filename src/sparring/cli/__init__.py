"""The ``sparring`` command: one module per command group, each calling ``sparring.api``;
``main`` maps every outcome to an exit code."""

from sparring.cli.main import main, run

__all__ = ["main", "run"]
