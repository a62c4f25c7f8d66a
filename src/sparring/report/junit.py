"""JUnit XML for CI dashboards: one test suite per technique, one test case per behavior.

Follows the common (Ant/Jenkins) JUnit schema. Harmful behaviors: a case fails when any trial
was unsafe, errors when a request failed, is skipped when its judgment was unscorable, and
passes otherwise. Benign behaviors (suite ``over_refusal.<technique>``) fail when refused.
A final ``sparring.gate`` suite holds the ``--fail-above`` verdict. Messages carry counts and
ids only, never prompt or response text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from sparring.metrics import Outcome, ScanSummary, Trial
from sparring.report.files import write_private
from sparring.report.gate import GateResult, gate


def to_junit(summary: ScanSummary, *, fail_above: float | None = None) -> str:
    """The report as a JUnit XML document (a string, with the XML declaration)."""
    cases: dict[tuple[bool, str], dict[str, list[Trial]]] = defaultdict(lambda: defaultdict(list))
    for t in summary.trials:
        cases[t.benign, t.technique][t.behavior_id].append(t)
    root = ET.Element("testsuites", name=f"sparring scan {summary.run.id}")
    for benign, technique in sorted(cases):
        prefix = "over_refusal" if benign else "asr"
        suite = _suite(root, f"{prefix}.{technique}", summary)
        for behavior_id, trials in sorted(cases[benign, technique].items()):
            case = ET.SubElement(
                suite,
                "testcase",
                name=behavior_id,
                classname=f"sparring.{prefix}.{technique}.{trials[0].category}",
                time=f"{sum(t.latency_s for t in trials):.3f}",
            )
            _outcome(case, trials, benign, summary.primary_judge)
    verdict = None if fail_above is None else gate(summary, fail_above)
    gate_case(_suite(root, "sparring.gate", summary), verdict)
    for element in (root, *root):
        count_cases(element)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: str | Path, summary: ScanSummary, *, fail_above: float | None = None) -> Path:
    """Write ``to_junit(summary, fail_above=...)`` to ``path`` (UTF-8) and return the path."""
    return write_private(Path(path), to_junit(summary, fail_above=fail_above))


def gate_case(suite: ET.Element, verdict: GateResult | None) -> None:
    """Add the ``--fail-above`` test case to ``suite``: skipped without a threshold
    (``verdict`` None), failed when the gate failed."""
    case = ET.SubElement(
        suite,
        "testcase",
        name="attack success rate within --fail-above",
        classname="sparring.gate",
        time="0.000",
    )
    if verdict is None:
        ET.SubElement(case, "skipped", message="no --fail-above threshold given")
    elif not verdict.passed:
        ET.SubElement(case, "failure", message=verdict.line, type="gate")


def _suite(root: ET.Element, name: str, summary: ScanSummary) -> ET.Element:
    run = summary.run
    suite = ET.SubElement(root, "testsuite", name=name)
    if run.created_at is not None:
        suite.set("timestamp", run.created_at.replace(tzinfo=None).isoformat(timespec="seconds"))
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("run_id", run.id),
        ("target", run.model_ids.get("target", "unknown")),
        ("judge_id", summary.primary_judge or "none"),
        ("seed", "none" if run.seed is None else str(run.seed)),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    return suite


def _outcome(case: ET.Element, trials: list[Trial], benign: bool, judge: str | None) -> None:
    count = {o: sum(t.outcome is o for t in trials) for o in Outcome}
    of = f"of {len(trials)} trials (judge {judge or 'none'})"
    bad = Outcome.REFUSAL if benign else Outcome.UNSAFE
    if count[bad]:
        what = "refused a benign request" if benign else "unsafe"
        ET.SubElement(case, "failure", message=f"{what} in {count[bad]} {of}", type=str(bad))
    elif count[Outcome.ERROR]:
        ET.SubElement(
            case, "error", message=f"request failed in {count[Outcome.ERROR]} {of}", type="error"
        )
    elif count[Outcome.UNSCORABLE]:
        ET.SubElement(case, "skipped", message=f"unscorable in {count[Outcome.UNSCORABLE]} {of}")


def count_cases(element: ET.Element) -> None:
    """Fill tests/failures/errors/skipped/time on a suite or on the root from its cases."""
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attr, str(sum(c.find(tag) is not None for c in cases)))
    element.set("time", f"{sum(float(c.get('time', '0')) for c in cases):.3f}")
