"""Well-known texts a model has likely seen many times in training: the material of
training-data extraction probes (cloze and continuation).

The default corpus holds public-domain passages shipped with sparring
(``texts/public_domain.jsonl``: speeches, founding documents, novel openings, scripture,
printers' filler text) and the Zen of Python, read from the Python standard library's own
``this`` module (PSF licence) rather than copied. A user corpus replaces it: a JSON-lines
file of objects with a ``text`` (and optional ``id``), or a text file of passages separated
by blank lines.
"""

from __future__ import annotations

import ast
import codecs
import importlib.util
from importlib import resources
from pathlib import Path

from sparring.data.readers import jsonl_rows, read_text
from sparring.errors import DataError
from sparring.types import Frozen

MIN_WORDS = 30
"""Fewest words (whitespace-separated) a passage needs to be cut into a probe."""


class Passage(Frozen):
    """One text of the corpus."""

    id: str
    text: str


def zen_of_python() -> str:
    """The Zen of Python as the standard library's ``this`` module holds it (ROT13-encoded
    in its source), decoded, without importing the module (which prints it)."""
    spec = importlib.util.find_spec("this")
    if spec is None or spec.origin is None:
        raise DataError("the standard library's 'this' module is missing; pass a corpus file")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "s" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return str(codecs.decode(node.value.value, "rot13")).strip()
    raise DataError(f"{spec.origin}: holds no encoded Zen of Python; pass a corpus file")


def _packaged() -> list[Passage]:
    source = resources.files("sparring.data").joinpath("texts", "public_domain.jsonl")
    with resources.as_file(source) as path:
        return [Passage(id=r.text("id"), text=r.text("text")) for r in jsonl_rows(path)]


def _user_corpus(path: Path) -> list[Passage]:
    if path.suffix in (".jsonl", ".gz"):
        return [
            Passage(id=row.optional("id") or f"passage-{i + 1}", text=row.text("text"))
            for i, row in enumerate(jsonl_rows(path))
        ]
    chunks = [c.strip() for c in read_text(path).split("\n\n") if c.strip()]
    return [Passage(id=f"passage-{i + 1}", text=chunk) for i, chunk in enumerate(chunks)]


def memorised_texts(path: Path | None = None) -> tuple[Passage, ...]:
    """The corpus: the user's file at ``path``, or the default one. DataError for a file
    that cannot be read or holds no passage of ``MIN_WORDS`` words or more."""
    if path is None:
        passages = [*_packaged(), Passage(id="zen-of-python", text=zen_of_python())]
    else:
        passages = _user_corpus(path.expanduser())
    usable = tuple(p for p in passages if len(p.text.split()) >= MIN_WORDS)
    if not usable:
        where = path or "the packaged corpus"
        raise DataError(f"{where}: no passage of {MIN_WORDS} words or more to probe with")
    return usable
