"""Inline SVG charts for the HTML report, drawn in Python so the file needs no script or CDN.

Sizes are in CSS pixels. Labels are escaped here; the strings returned are ready to embed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from itertools import pairwise

from sparring.metrics import ScopedRate
from sparring.report.formatting import interval, pct

# Sequential white-to-dark-red scale (0% .. 100%): red reads as "attack got through"
# without a legend, and the light end keeps safe cells quiet.
_STOPS = (
    (0.0, (255, 247, 243)),
    (0.25, (252, 187, 161)),
    (0.5, (251, 106, 74)),
    (0.75, (203, 24, 29)),
    (1.0, (103, 0, 13)),
)
_EMPTY = "#e6e6e6"
_CHAR_W = 7.0  # rough width of one 12px sans-serif character, to size label columns


def colour(value: float | None) -> str:
    """Fill colour for a rate (probability); grey when the rate is undefined."""
    if value is None:
        return _EMPTY
    v = min(1.0, max(0.0, value))
    for (x0, c0), (x1, c1) in pairwise(_STOPS):
        if v <= x1:
            t = (v - x0) / (x1 - x0)
            rgb = (round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#{:02x}{:02x}{:02x}".format(*_STOPS[-1][1])


def _tooltip(name: str, scoped: ScopedRate) -> str:
    r = scoped.rate
    return (
        f"{name}: {pct(r.value)} (95% CI {interval(r)}), {r.k}/{r.n} {scoped.unit}, "
        f"unscorable {scoped.unscorable}, errors {scoped.errors}"
    )


def heat_map(
    cells: Mapping[tuple[str, str], ScopedRate],
    categories: Sequence[str],
    techniques: Sequence[str],
    link: Callable[[str, str], str | None],
) -> str:
    """Category (rows) × technique (columns) grid of ASR; each cell's title gives n and the
    interval, and ``link(category, technique)`` names the anchor of its examples, if any."""
    cw, ch = 64, 30
    left = 16 + _CHAR_W * max((len(c) for c in categories), default=4)
    top = 20 + 0.72 * _CHAR_W * max((len(t) for t in techniques), default=4)
    width, height = left + cw * len(techniques) + 10, top + ch * len(categories) + 10
    parts = [
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-label="Attack success rate by category and technique">'
    ]
    for j, tech in enumerate(techniques):
        x, y = left + cw * j + cw / 2, top - 8
        parts.append(
            f'<text class="col" x="{x:.1f}" y="{y:.1f}" transform="rotate(-40 {x:.1f} {y:.1f})">'
            f"{escape(tech)}</text>"
        )
    for i, cat in enumerate(categories):
        y = top + ch * i
        parts.append(
            f'<text class="row" x="{left - 8:.1f}" y="{y + ch / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(cat)}</text>'
        )
        for j, tech in enumerate(techniques):
            x = left + cw * j
            scoped = cells.get((cat, tech))
            if scoped is None:
                parts.append(
                    f'<rect class="none" x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" '
                    f'fill="#fafafa"><title>{escape(cat)} × {escape(tech)}: not run</title></rect>'
                )
                continue
            value = scoped.rate.value
            # A class, not a fill attribute: the stylesheet's `svg text` rule outranks
            # presentation attributes, which left dark text on the darkest cells.
            ink = "light" if value is not None and value > 0.55 else "dark"
            cell = (
                f'<g class="cell" data-category="{escape(cat)}" data-technique="{escape(tech)}">'
                f"<title>{escape(_tooltip(f'{cat} × {tech}', scoped))}</title>"
                f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" rx="3" '
                f'fill="{colour(value)}"/>'
                f'<text class="{ink}" x="{x + (cw - 2) / 2:.1f}" y="{y + ch / 2 + 3:.1f}" '
                f'text-anchor="middle">{pct(value) if value is not None else "n/a"}</text></g>'
            )
            anchor = link(cat, tech)
            parts.append(f'<a href="#{escape(anchor)}">{cell}</a>' if anchor else cell)
    parts.append("</svg>")
    return "".join(parts)


def legend() -> str:
    """A small colour bar from 0% to 100%, plus the colour of an undefined cell."""
    stops = "".join(f'<stop offset="{x:.2f}" stop-color="{colour(x)}"/>' for x, _ in _STOPS)
    return (
        '<svg class="legend" xmlns="http://www.w3.org/2000/svg" width="330" height="34" '
        'role="img" aria-label="Colour scale">'
        f'<defs><linearGradient id="asr-scale">{stops}</linearGradient></defs>'
        '<rect x="0" y="2" width="200" height="12" fill="url(#asr-scale)"/>'
        '<text x="0" y="28">0%</text><text x="100" y="28" text-anchor="middle">50%</text>'
        '<text x="200" y="28" text-anchor="end">100%</text>'
        f'<rect x="230" y="2" width="14" height="12" fill="{_EMPTY}"/>'
        '<text x="250" y="13">n = 0</text></svg>'
    )


def interval_chart(rows: Sequence[tuple[str, ScopedRate]], label: str) -> str:
    """Horizontal chart: per row, a bar to the rate, its 95% interval as a whisker, and the
    value with n on the right. ``label`` names the chart for screen readers."""
    row_h, plot_w, right_w = 24, 320, 190
    left = 16 + _CHAR_W * max((len(name) for name, _ in rows), default=4)
    top = 22
    width = left + plot_w + right_w
    height = top + row_h * len(rows) + 6
    parts = [
        f'<svg class="intervals" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{escape(label)}">'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + plot_w * tick
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 4}"/>'
            f'<text class="tick" x="{x:.1f}" y="{top - 8}" text-anchor="middle">'
            f"{tick:.0%}</text>"
        )
    for i, (name, scoped) in enumerate(rows):
        r = scoped.rate
        y = top + row_h * i
        mid = y + row_h / 2
        parts.append(
            f'<g class="interval" data-name="{escape(name)}">'
            f"<title>{escape(_tooltip(name, scoped))}</title>"
            f'<text x="{left - 8:.1f}" y="{mid + 4:.1f}" text-anchor="end">{escape(name)}</text>'
        )
        if r.value is not None:
            x0, xv = left + plot_w * r.low, left + plot_w * r.value
            x1 = left + plot_w * r.high
            parts.append(
                f'<rect class="bar" x="{left:.1f}" y="{mid - 6:.1f}" '
                f'width="{max(0.0, xv - left):.1f}" height="12" fill="{colour(r.value)}"/>'
                f'<line class="ci" x1="{x0:.1f}" y1="{mid:.1f}" x2="{x1:.1f}" y2="{mid:.1f}"/>'
                f'<line class="ci" x1="{x0:.1f}" y1="{mid - 5:.1f}" x2="{x0:.1f}" '
                f'y2="{mid + 5:.1f}"/>'
                f'<line class="ci" x1="{x1:.1f}" y1="{mid - 5:.1f}" x2="{x1:.1f}" '
                f'y2="{mid + 5:.1f}"/>'
                f'<circle class="point" cx="{xv:.1f}" cy="{mid:.1f}" r="3.5"/>'
            )
        note = f"{pct(r.value)}  [{interval(r)}]  n={r.n}"
        parts.append(
            f'<text class="value" x="{left + plot_w + 10:.1f}" y="{mid + 4:.1f}">'
            f"{escape(note)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
