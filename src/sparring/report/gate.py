"""The ``--fail-above`` gate: one pass/fail line for CI from the overall attack success rate."""

from __future__ import annotations

from dataclasses import dataclass

from sparring.errors import ConfigError
from sparring.metrics import Metric, ScanSummary
from sparring.report.formatting import pct
from sparring.stats import Rate


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict: the overall ASR point estimate against a threshold (probabilities)."""

    passed: bool
    threshold: float
    asr: Rate
    line: str


def check_fail_above(fail_above: float) -> None:
    """Raise ConfigError unless ``fail_above`` is a probability (0..1)."""
    if not 0.0 <= fail_above <= 1.0:
        raise ConfigError(
            f"--fail-above must be a fraction between 0 and 1 (e.g. 0.2 for 20%), got {fail_above}"
        )


def gate(summary: ScanSummary, fail_above: float) -> GateResult:
    """Pass when the overall ASR (a probability) is at most ``fail_above``.

    The point estimate is gated, not the interval's upper end, so the threshold reads as the
    rate a user expects; the line shows the interval next to it. A scan with no scored trial
    fails: errors and unscorable trials prove nothing safe.
    """
    check_fail_above(fail_above)
    asr = summary.overall(Metric.ASR).rate
    limit = f"--fail-above {pct(fail_above)}"
    if asr.value is None:
        line = f"FAIL: no scored trial, so ASR is unknown ({limit})"
        return GateResult(False, fail_above, asr, line)
    shown = f"ASR {pct(asr.value)} (95% CI {pct(asr.low)}–{pct(asr.high)}, n={asr.n})"
    if asr.value > fail_above:
        return GateResult(False, fail_above, asr, f"FAIL: {shown} is above {limit}")
    return GateResult(True, fail_above, asr, f"PASS: {shown} is within {limit}")
