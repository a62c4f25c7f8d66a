"""Text for rates and judge figures: the one set of formatters, shared by the scan's console,
HTML and JUnit renderings, the DART report and the DART loop's stage lines."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeGuard

from sparring.stats import Rate


def pct(value: float | None) -> str:
    """A probability as a percentage with one decimal, or ``n/a`` when undefined."""
    return "n/a" if value is None else f"{value:.1%}"


def interval(r: Rate) -> str:
    """The 95% interval of a rate, e.g. ``23.7–76.3%``; ``n/a`` when n = 0."""
    if r.value is None:
        return "n/a"
    return f"{r.low * 100:.1f}–{r.high * 100:.1f}%"


def rate_text(r: Rate) -> str:
    """Value, interval and n in one phrase, e.g. ``50.0% (95% CI 23.7–76.3%, n=10)``."""
    if r.value is None:
        return "n/a (n=0)"
    return f"{pct(r.value)} (95% CI {interval(r)}, n={r.n})"


def rate_line(r: Rate | None) -> str:
    """Value, interval and n for a log line, e.g. ``12.0% [7.7%, 18.2%] of 150``; ``n/a``
    when there is no rate or n = 0."""
    if r is None or r.value is None:
        return "n/a"
    return f"{pct(r.value)} [{pct(r.low)}, {pct(r.high)}] of {r.n}"


def estimate_cell(value: float | None, low: float | None, high: float | None) -> str:
    """A table cell for a proportion and its 95% interval, e.g. ``75.0% [52.1, 88.4]``;
    ``-`` when the value is undefined (both ends are then undefined too)."""
    if value is None or low is None or high is None:
        return "-"
    return f"{pct(value)} [{low * 100:.1f}, {high * 100:.1f}]"


def rate_cell(r: Rate | None) -> str:
    """A table cell for a rate, e.g. ``12.0% [7.7, 18.2] n=150``; ``-`` when there is no
    rate or n = 0."""
    if r is None or r.value is None:
        return "-"
    return f"{estimate_cell(r.value, r.low, r.high)} n={r.n}"


_SCORES = (("accuracy", "accuracy"), ("kappa", "κ"))
"""The figures a judge card line shows, by card field, with the name shown."""
_QUESTIONS = {"harm": "unsafe vs not", "refusal": "refused vs not"}
"""Card fields holding the scores of one question, as ``sparring judge eval`` saves them."""
_CROSS_VALIDATED = "_cv_mean"
"""Suffix of a training-record field holding refusal accuracy cross-validated by file
(``xstest_cv_mean`` in the embedded judge's record, see ``sparring.judges.training``)."""
_DATA_SETS = {
    "advbench": "AdvBench",
    "gptfuzz": "GPTFuzz",
    "harmbench": "HarmBench",
    "jailbreakbench": "JailbreakBench",
    "strongreject": "StrongREJECT",
    "xstest": "XSTest",
}
"""Display names of labelled data sets, by the first word of a card field or file name."""


def agreement_text(agreement: Mapping[str, object] | None) -> str:
    """A judge's measured agreement with human labels as one short line, or ``not measured``.

    It reads the shapes judge cards come in (``sparring.judges.judge_card``):

    - scores at the top level, e.g. ``{"kappa": 0.81, "n": 450, "reference": "xstest human
      labels"}`` gives ``κ 0.810 on xstest human labels (n=450)``;
    - scores per data set, as in the embedded judge's training record, e.g.
      ``{"gptfuzz_evaluate": {"accuracy": 0.915, "kappa": 0.81, "n": 1540, ...},
      "xstest_cv_mean": 0.942}`` gives ``accuracy 0.915, κ 0.810 on GPTFuzz (n=1540);
      refusal accuracy 0.942 on XSTest (cross-validated by file)``;
    - scores per question, as ``sparring judge eval`` saves them, e.g. ``{"measured_on":
      ["xstest_v2_completions_gpt4.csv"], "harm": {...}, "refusal": {...}}`` gives
      ``unsafe vs not: accuracy …, κ … on XSTest (n=…); refused vs not: …``.

    Only accuracy and Cohen's κ are shown, with n (and the unscorable items, when there
    were any); per-file breakdowns are left to the JSON report. A card of any other shape
    shows its plain top-level fields, never a nested mapping.
    """
    if not agreement:
        return "not measured"
    if isinstance(sources := agreement.get("sources"), Mapping) and sources:
        return _per_source_text(sources, agreement.get("out_of_source"))
    where = _data_name(agreement.get("measured_on", agreement.get("reference")))
    phrases = [_scores_phrase(agreement, where)]
    for name, value in agreement.items():
        if isinstance(value, Mapping):
            if name in _QUESTIONS:
                scored = _scores_phrase(value, where)
                phrases.append(f"{_QUESTIONS[name]}: {scored}" if scored else "")
            else:
                phrases.append(_scores_phrase(value, _data_name(name)))
        elif name.endswith(_CROSS_VALIDATED) and _is_number(value):
            phrases.append(
                f"refusal accuracy {value:.3f} on {_data_name(name)} (cross-validated by file)"
            )
    return "; ".join(p for p in phrases if p) or _plain_fields(agreement)


def _per_source_text(sources: Mapping[str, object], out_of_source: object) -> str:
    """``out of source: gptfuzz unsafe vs not accuracy 0.821 (95% CI 0.812–0.829), κ 0.587
    (n=7700); …``: per source and question, as the card's ``sources`` holds them."""
    prefix = {"True": "out of source: ", "False": "in source (trained on): "}.get(
        str(out_of_source), ""
    )
    phrases = []
    for source, questions in sources.items():
        for question, scores in questions.items() if isinstance(questions, Mapping) else ():
            if isinstance(scores, Mapping) and question in _QUESTIONS:
                ci = scores.get("accuracy_ci")
                shown = _scores_phrase(scores, None)
                if isinstance(ci, list | tuple) and len(ci) == 2 and shown:
                    shown = shown.replace(", κ", f" (95% CI {ci[0]:.3f}–{ci[1]:.3f}), κ", 1)
                phrases.append(f"{source} {_QUESTIONS[question]} {shown}" if shown else "")
    return prefix + "; ".join(str(p) for p in phrases if p)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scores_phrase(scores: Mapping[str, object], where: str | None) -> str:
    """``accuracy 0.915, κ 0.810 on GPTFuzz (n=1540)``; empty when ``scores`` has none."""
    figures = [
        f"{shown} {value:.3f}" for field, shown in _SCORES if _is_number(value := scores.get(field))
    ]
    if not figures:
        return ""
    text = ", ".join(figures)
    if where:
        text += f" on {where}"
    counts = []
    if _is_number(n := scores.get("n")):
        counts.append(f"n={n}")
    if _is_number(unscorable := scores.get("unscorable")) and unscorable:
        counts.append(f"{unscorable} unscorable")
    return f"{text} ({', '.join(counts)})" if counts else text


def _data_name(source: object) -> str | None:
    """A data set's display name from a card field, a file name or a list of them; free
    text (e.g. ``xstest human labels``) is kept as it is."""
    if isinstance(source, list | tuple):
        names = [n for n in (_data_name(s) for s in source) if n]
        return ", ".join(dict.fromkeys(names)) or None
    if not isinstance(source, str) or not source:
        return None
    first = re.split(r"[_\-.\s]", source, maxsplit=1)[0].lower()
    if first in _DATA_SETS and not re.search(r"\s", source):
        return _DATA_SETS[first]
    return source


def _plain_fields(agreement: Mapping[str, object]) -> str:
    """``name value`` for each plain top-level field of a card of unknown shape."""
    parts = []
    for name, value in agreement.items():
        if name == "judge_id" or isinstance(value, Mapping | list | tuple):
            continue
        parts.append(f"{name} {value:.3f}" if isinstance(value, float) else f"{name} {value}")
    return ", ".join(parts) or "measured, no summary figures (see report.json)"


def concurrency_text(in_flight: int, limit: int) -> str:
    """Attempts a scan keeps in flight and its target backend's own request limit, as one
    line: ``64 attempts in flight; target backend limit 64``."""
    line = f"{in_flight} attempts in flight; target backend limit {limit}"
    if limit < in_flight:
        line += " (its requests beyond that wait for a free slot)"
    return line
