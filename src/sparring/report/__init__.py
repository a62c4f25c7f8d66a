"""Scan reports: a terminal summary, one offline HTML file, JSON, JUnit XML, and run-to-run
comparison. All start from ``sparring.metrics.summarize``; only the HTML report also needs
the attempts themselves (for its example drill-down)."""

from sparring.report.compare import (
    Comparison,
    RateChange,
    compare,
    comparison_to_json,
    render_comparison,
)
from sparring.report.console import render_console
from sparring.report.files import write_private
from sparring.report.gate import GateResult, gate
from sparring.report.html import redact_text, render_html, write_html
from sparring.report.json_report import (
    SCHEMA_VERSION,
    from_json,
    load_json,
    to_json,
    write_json,
)
from sparring.report.junit import to_junit, write_junit

__all__ = [
    "SCHEMA_VERSION",
    "Comparison",
    "GateResult",
    "RateChange",
    "compare",
    "comparison_to_json",
    "from_json",
    "gate",
    "load_json",
    "redact_text",
    "render_comparison",
    "render_console",
    "render_html",
    "to_json",
    "to_junit",
    "write_html",
    "write_json",
    "write_junit",
    "write_private",
]
