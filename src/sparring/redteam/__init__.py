"""The red-team application: an attacker model against the target, iteratively.

Methods (one module each, registered in ``METHODS``): ``pair``, ``tap``, ``crescendo`` and
``goat``; ``adaptive`` spends a per-behavior budget across them and the scan's static
techniques with Thompson sampling. ``calls`` batches the sequential steps of every episode
into engine phases, so every attacker, target and judge call is stored, cached and resumed;
``report`` reads ASR against target queries from the stored episodes.

    config = redteam_config({"methods": "pair,tap", "limit": 5})
    result = await run_redteam(config, store)
    report = load_report(store, result.run_id)
"""

from sparring.redteam import crescendo, goat, pair, tap  # noqa: F401 - they register methods
from sparring.redteam.command import RedteamOutcome, redteam_command
from sparring.redteam.config import ADAPTIVE, ITERATIVE, Budgets, RedteamConfig, redteam_config
from sparring.redteam.registry import METHODS, method
from sparring.redteam.report import RedteamReport, load_report, render_console, to_json
from sparring.redteam.run import RedteamResult, load_behaviors, run_redteam

__all__ = [
    "ADAPTIVE",
    "ITERATIVE",
    "METHODS",
    "Budgets",
    "RedteamConfig",
    "RedteamOutcome",
    "RedteamReport",
    "RedteamResult",
    "load_behaviors",
    "load_report",
    "method",
    "redteam_command",
    "redteam_config",
    "render_console",
    "run_redteam",
    "to_json",
]
