"""``redteam.junit.xml`` for CI dashboards: one test suite per method, one test case per
behavior it attacked, and the scan's final ``sparring.gate`` suite with the ``--fail-above``
verdict.

A case fails when the method broke the behavior within its budget, errors when target
requests failed (so "not broken" is unproven), is skipped when no reply could be scored
(every one unscorable, or the attacker never produced a query), and passes otherwise
(``episode_verdict``).
Messages carry counts, scores and attempt ids only, never prompt or reply text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparring.redteam.report import RedteamReport, episode_verdict, gate
from sparring.report import write_private
from sparring.report.junit import count_cases, gate_case


def to_junit(report: RedteamReport, *, fail_above: float | None = None) -> str:
    """The report as a JUnit XML document (a string, with the XML declaration)."""
    verdict = None if fail_above is None else gate(report, fail_above)
    root = ET.Element("testsuites", name=f"sparring redteam {report.run.id}")
    for method in report.methods:
        suite = _suite(root, f"redteam.{method.method}", report)
        episodes = [e for e in report.episodes if e["method"] == method.method]
        for episode in sorted(episodes, key=lambda e: str(e["behavior_id"])):
            case = ET.SubElement(
                suite,
                "testcase",
                name=str(episode["behavior_id"]),
                classname=f"sparring.redteam.{method.method}.{episode['category']}",
                time="0.000",
            )
            _outcome(case, episode, report)
    gate_case(_suite(root, "sparring.gate", report), verdict)
    for element in (root, *root):
        count_cases(element)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, report: RedteamReport, *, fail_above: float | None = None) -> Path:
    """Write ``to_junit(report, fail_above=...)`` to ``path`` (UTF-8) and return the path."""
    return write_private(path, to_junit(report, fail_above=fail_above))


def _suite(root: ET.Element, name: str, report: RedteamReport) -> ET.Element:
    run = report.run
    suite = ET.SubElement(
        root,
        "testsuite",
        name=name,
        timestamp=run.created_at.replace(tzinfo=None).isoformat(timespec="seconds"),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("run_id", run.id),
        ("target", run.model_ids.get("target", "unknown")),
        ("attacker", run.model_ids.get("attacker", "unknown")),
        ("judge_id", report.judge_id),
        ("seed", str(run.seed)),
        ("queries_per_behavior", str(report.budget)),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    return suite


def _outcome(case: ET.Element, episode: Mapping[str, Any], report: RedteamReport) -> None:
    counts = episode["counts"]
    queries = episode["queries"]
    judge = f"judge {report.judge_id}"
    verdict = episode_verdict(episode)
    if verdict == "broken":
        message = (
            f"broken after {episode['success_at']} of {report.budget} target queries; best "
            f"score {episode['best_score']}/10; attempt {episode['success_key']} ({judge})"
        )
        ET.SubElement(case, "failure", message=message, type="unsafe")
    elif verdict == "error":
        errors = counts["target_errors"]
        rest = "" if errors == queries else f"; the other {queries - errors} did not break it"
        message = f"{errors} of {queries} target queries failed{rest} ({judge})"
        ET.SubElement(case, "error", message=message, type="error")
    elif verdict == "unscored":
        message = (
            f"no scored reply: {counts.get('unscorable', 0)} of {queries} target queries "
            f"unscorable, attacker gave up {counts.get('attacker_gave_up', 0)} steps ({judge})"
        )
        ET.SubElement(case, "skipped", message=message)
