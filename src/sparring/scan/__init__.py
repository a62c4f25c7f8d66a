"""The scan application: behaviors × attack techniques → target → judges → reports.

``config`` holds ScanConfig; ``plan`` chooses behaviors and writes the attempts; ``run``
checks the models and executes the plan through the engine; ``report`` renders a stored
run.
"""

from sparring.scan.config import (
    DEFAULT_ATTACKS,
    DEFAULT_TARGET,
    ScanConfig,
    load_config,
    make_config,
)
from sparring.scan.plan import BENIGN_ATTACK, build_plan, load_scan_behaviors, select_behaviors
from sparring.scan.report import ReportFiles, load_scan, write_reports
from sparring.scan.run import ScanResult, run_scan

__all__ = [
    "BENIGN_ATTACK",
    "DEFAULT_ATTACKS",
    "DEFAULT_TARGET",
    "ReportFiles",
    "ScanConfig",
    "ScanResult",
    "build_plan",
    "load_config",
    "load_scan",
    "load_scan_behaviors",
    "make_config",
    "run_scan",
    "select_behaviors",
    "write_reports",
]
