"""A behavior loader outside sparring, in one file: the ``lines`` format reads a text file
with one harmful request per line. Named in ``SPARRING_PLUGINS``
(``plugins.lines_loader``), it is registered by importing it, and then usable wherever a
data format is (``load_behaviors``, a scan's ``behaviors_format``)."""

from __future__ import annotations

from pathlib import Path

from sparring.data import guess_category, register
from sparring.data.readers import read_text
from sparring.types import Behavior


@register("lines", description="One harmful request per line of a text file (a test plugin).")
def load_lines(path: Path) -> list[Behavior]:
    """Every non-blank line is a behavior ``lines-0000``, ``lines-0001``..., by line."""
    texts = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    return [
        Behavior(id=f"lines-{i:04d}", text=text, category=guess_category(text), source="lines")
        for i, text in enumerate(texts)
    ]
