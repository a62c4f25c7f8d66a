"""Report files are written readable by their owner only: they hold the prompts and replies
of a run, harmful ones included, unless the user asked for a redacted report."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with mode 0600, replacing any file there; its
    folder is created (mode 0700) when missing. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file that was already there keeps its old mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path
