"""Open a sparring HTML report in headless Chromium with the network cut off, and check that
its heat map and interval bars are in the rendered DOM.

    python scripts/check_html_render.py REPORT.html [--screenshot OUT.png]
    python scripts/check_html_render.py --demo DIR [--redact]

``--demo`` first writes DIR/report.html from the JailbreakBench behaviors in
``$SPARRING_DATA_DIR`` (default ``../shared/data``) with simulated outcomes, and a screenshot
DIR/report.png, for a person to look at the layout. Prints one JSON object of findings;
exits 0 when the charts rendered, 1 when not, 2 when no Chromium is installed
(Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from sparring.metrics import ScanData, summarize
from sparring.report import write_html
from sparring.store.records import RunRecord
from sparring.types import AttemptResult, AttemptSpec, Behavior, Completion, Label, Message, Verdict

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    # Every host name fails to resolve, so a report that needs the network shows it.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
TIMEOUT_S = 120


def find_browser() -> str | None:
    """Path of a Chromium-family browser: $SPARRING_CHROMIUM, else the first on PATH."""
    named = os.environ.get("SPARRING_CHROMIUM")
    if named:
        return shutil.which(named)
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class _Census(HTMLParser):
    """Counts the elements the check looks for in the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.external: list[str] = []
        self._svg: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        classes = attr.get("class", "").split()
        if tag == "svg":
            self._svg.append(classes[0] if classes else "")
            self.counts[f"svg.{self._svg[-1]}"] += 1
        inside = self._svg[-1] if self._svg else ""
        if inside == "heatmap" and tag == "g" and "cell" in classes:
            self.counts["heatmap_cells"] += 1
        if inside == "intervals" and tag == "g" and "interval" in classes:
            self.counts["interval_rows"] += 1
        if inside == "intervals" and tag == "line" and "ci" in classes:
            self.counts["ci_lines"] += 1
        if tag == "details":
            self.counts["details"] += 1
            self.counts["details_open"] += "open" in attr
        for name in ("src", "href"):
            value = attr.get(name, "")
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self._svg:
            self._svg.pop()


def render(browser: str, html: Path, screenshot: Path | None) -> dict[str, object]:
    """Dump the rendered DOM (and optionally a screenshot) and count what rendered."""
    url = html.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="sparring-chromium-") as profile:
        base = [browser, *FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run(
            [*base, "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        if screenshot is not None:
            subprocess.run(
                [*base, "--window-size=1280,2200", f"--screenshot={screenshot}", url],
                capture_output=True,
                timeout=TIMEOUT_S,
                check=False,
            )
    census = _Census()
    census.feed(dom.stdout)
    counts = census.counts
    ok = (
        dom.returncode == 0
        and counts["svg.heatmap"] == 1
        and counts["heatmap_cells"] > 0
        and counts["ci_lines"] > 0
        and not census.external
    )
    return {
        "ok": ok,
        "browser_rc": dom.returncode,
        "dom_chars": len(dom.stdout),
        "heatmap_cells": counts["heatmap_cells"],
        "interval_charts": counts["svg.intervals"],
        "interval_rows": counts["interval_rows"],
        "ci_lines": counts["ci_lines"],
        "details": counts["details"],
        "details_open": counts["details_open"],
        "external_refs": census.external,
        "screenshot": str(screenshot) if screenshot and screenshot.is_file() else None,
    }


def demo_report(folder: Path, *, redact: bool) -> Path:
    """A report over JailbreakBench's harmful and benign behaviors with simulated verdicts."""
    data_dir = Path(
        os.environ.get("SPARRING_DATA_DIR", Path(__file__).parents[1] / "../shared/data")
    )
    behaviors = []
    for name, benign in (("jbb_harmful_behaviors.csv", False), ("jbb_benign_behaviors.csv", True)):
        with (data_dir / "jailbreakbench" / name).open(newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f)):
                row = {k.lower(): v for k, v in row.items()}
                category = row["category"].lower().replace("/", "_").replace(" ", "_")
                behaviors.append(
                    Behavior(
                        id=f"jbb-{'b' if benign else 'h'}{i}",
                        text=row["goal"],
                        category=category,
                        source="jailbreakbench",
                        benign=benign,
                    )
                )
    rng = np.random.default_rng(0)
    techniques = {"direct": 0.05, "base64": 0.15, "roleplay": 0.35, "refusal_suppression": 0.25}
    attempts = []
    for b in behaviors:
        for technique, p in techniques.items():
            u = rng.random()
            label = (
                (Label.REFUSAL if u < 0.1 else Label.SAFE)
                if b.benign
                else (Label.UNSAFE if u < p else Label.REFUSAL if u < 0.85 else Label.SAFE)
            )
            spec = AttemptSpec(
                behavior_id=b.id, attack=technique, messages=(Message(role="user", content=b.text),)
            )
            if u > 0.985:
                attempts.append(
                    AttemptResult(spec=spec, completions=(Completion.failure("HTTP 503"),))
                )
                continue
            reply = Completion(text=f"(simulated {label} reply to {b.id})", latency_s=0.4)
            verdict = Verdict(label=label, judge_id="simulated@0", p_unsafe=float(u))
            attempts.append(AttemptResult(spec=spec, completions=(reply,), verdicts=(verdict,)))
    run = RunRecord(
        id="demo-jbb",
        kind="scan",
        status="finished",
        config={"techniques": list(techniques)},
        seed=0,
        model_ids={"target": "builtin/simulated", "judge": "simulated@0"},
        created_at=datetime.now(UTC),
        versions={"sparring": "demo"},
    )
    data = ScanData(run=run, behaviors=behaviors, attempts=attempts)
    path = folder / "report.html"
    write_html(
        path,
        data,
        summarize(data),
        redact=redact,
        fail_above=0.2,
        judge_agreement={"kappa": 0.8, "n": 100, "reference": "simulated"},
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", type=Path, help="report to open")
    parser.add_argument("--screenshot", type=Path, help="also save a PNG screenshot here")
    parser.add_argument("--demo", type=Path, help="write and check a demo report in this folder")
    parser.add_argument("--redact", action="store_true", help="redact the demo report")
    args = parser.parse_args()
    browser = find_browser()
    if browser is None:
        print(json.dumps({"ok": False, "error": "no chromium; apt-get install -y chromium"}))
        return 2
    if args.demo is not None:
        args.demo.mkdir(parents=True, exist_ok=True)
        html, shot = demo_report(args.demo, redact=args.redact), args.demo / "report.png"
    elif args.html is not None:
        html, shot = args.html, args.screenshot
    else:
        parser.error("give a report path or --demo DIR")
    findings = render(browser, html, shot)
    print(json.dumps(findings))
    return 0 if findings["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
