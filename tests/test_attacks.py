"""The attack catalogue: every technique realizes valid prompts that carry the request."""

from __future__ import annotations

import base64
import codecs
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sparring.attacks import (
    ATTACKS,
    FAMILIES,
    Attack,
    AttackContext,
    AttackPrompt,
    HelperError,
    decode,
    get_attack,
    list_attacks,
    load_templates,
    register,
    request_text,
)
from sparring.attacks.scenario import past_tense_rewrite
from sparring.attacks.splitting import split_text
from sparring.attacks.template_file import Template
from sparring.errors import ConfigError
from sparring.judges.exact import parse_check
from sparring.models.openai_http import OpenAICompatibleModel
from sparring.testing import ChatRequest, Fault, OpenAIServer
from sparring.types import Behavior, GenerationParams

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("SPARRING_DATA_DIR", REPO.parent / "shared" / "data"))
GPTFUZZER_CSV = DATA_DIR / "jailbreak_templates" / "gptfuzzer_templates.csv"
PAYLOADS = REPO / "configs" / "injection-payloads.txt"

# Test behaviors are harmless on purpose; leetspeak's lossy digits are avoided in them.
BENIGN = Behavior(
    id="test-benign-bread",
    text="Explain how to bake sourdough bread at home",
    category="benign",
    source="tests",
    benign=True,
)
CONTEXTUAL = Behavior(
    id="test-contextual-guild",
    text="Summarise the document below in two sentences",
    category="benign",
    source="tests",
    context=(
        "The Lighthouse Keepers' Guild met on Tuesday. Members agreed to repaint the "
        'northern tower, to hire two apprentices, and to write a "history of the lamps".'
    ),
)
ENCODINGS = ("base64", "rot13", "leetspeak", "atbash", "reversed-text")
SEEDED = (
    "roleplay-persona",
    "template-file",
    "prefix-injection",
    "style-injection",
    "fictional-scenario",
    "past-tense",
    "payload-splitting",
    "many-shot",
    "crescendo-lite",
    "translation",
)


def translating_responder(request: ChatRequest) -> str:
    """A scripted 'translator' that tags the text, so the request stays checkable."""
    return f"[translated] {request.last_user_text}"


@pytest.fixture
async def helper_server() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer(responder=translating_responder) as server:
        yield server


@pytest.fixture
async def helper(helper_server: OpenAIServer) -> AsyncIterator[OpenAICompatibleModel]:
    model = OpenAICompatibleModel(
        "sparring-test",
        model_id="openai-compatible/sparring-test",
        base_url=helper_server.base_url,
        api_key=None,
        max_retries=0,
    )
    yield model
    await model.aclose()


def make(name: str) -> Attack[Any]:
    """The attack with the options it needs here (the GPTFuzzer templates file, the example
    injection payloads)."""
    files = {"template-file": GPTFUZZER_CSV, "payload-file": PAYLOADS}
    return get_attack(name, file=files[name]) if name in files else get_attack(name)


async def realize(
    attack: Attack[Any],
    behavior: Behavior,
    helper: OpenAICompatibleModel | None = None,
    seed: int = 0,
) -> list[AttackPrompt]:
    """Realise ``attack`` as a scan does: its helper requests answered by ``helper`` first."""
    if helper is None:
        return await attack.realize(behavior, AttackContext(seed=seed))
    asking = AttackContext(seed=seed, helper_id=helper.id)
    requests = attack.helper_requests(behavior, asking)
    answers = {
        r: (await helper.generate([list(r.messages)], GenerationParams()))[0] for r in requests
    }
    ctx = AttackContext(seed=seed, helper_id=helper.id, answers=answers)
    return await attack.realize(behavior, ctx)


def helper_for(attack: Attack[Any], helper: OpenAICompatibleModel) -> OpenAICompatibleModel | None:
    return helper if attack.needs_helper else None


def all_text(prompt: AttackPrompt) -> str:
    return "\n".join([m.content for m in prompt.messages] + list(prompt.followups))


def assert_valid(prompt: AttackPrompt) -> None:
    roles = [m.role for m in prompt.messages]
    dialogue = roles[1:] if roles[0] == "system" else roles
    assert "system" not in dialogue
    assert dialogue == ["user", "assistant"] * (len(dialogue) // 2) + ["user"]
    assert all(m.content.strip() for m in prompt.messages)
    assert all(turn.strip() for turn in prompt.followups)
    json.dumps(prompt.meta)


def split_fragments(text: str) -> list[str]:
    return [json.loads(literal) for literal in re.findall(r'^[a-h] = (".*")$', text, re.M)]


def assert_carries_request(name: str, prompt: AttackPrompt, behavior: Behavior) -> None:
    request = request_text(behavior)
    text = all_text(prompt)
    if name in ENCODINGS:
        assert prompt.meta["payload"] in text
        decoded = decode(prompt.meta["encoding"], prompt.meta["payload"])
        assert decoded == (request if prompt.meta["lossless"] else request.lower())
    elif name == "payload-splitting":
        assert "".join(split_fragments(text)) == request
    elif ATTACKS.get(name).checked:
        # Injection, extraction and sponge attacks send the application's task or a probe
        # of their own, not the request; what they carry is the check that scores them.
        assert parse_check(prompt.meta["check"])
    elif name == "past-tense":
        core = prompt.meta["core"]
        assert core.casefold() in behavior.text.casefold()
        assert core.casefold() in text.casefold()
        assert behavior.context is None or behavior.context in text
    else:
        assert request in text


@pytest.mark.parametrize("behavior", [BENIGN, CONTEXTUAL], ids=["benign", "contextual"])
@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_every_attack_realizes_valid_prompts_carrying_the_request(
    name: str, behavior: Behavior, helper: OpenAICompatibleModel
) -> None:
    attack = make(name)
    prompts = await realize(attack, behavior, helper_for(attack, helper))
    assert prompts
    for prompt in prompts:
        assert_valid(prompt)
        assert_carries_request(name, prompt, behavior)


@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_realisation_is_deterministic_for_a_seed(
    name: str, helper: OpenAICompatibleModel
) -> None:
    attack = make(name)
    first = await realize(attack, CONTEXTUAL, helper_for(attack, helper), seed=7)
    second = await realize(attack, CONTEXTUAL, helper_for(attack, helper), seed=7)
    assert first == second


@pytest.mark.parametrize("name", SEEDED)
async def test_seeded_choices_differ_across_seeds(name: str, helper: OpenAICompatibleModel) -> None:
    attack = make(name)
    realisations = set()
    for seed in range(8):
        [prompt] = await realize(attack, BENIGN, helper_for(attack, helper), seed=seed)
        realisations.add(prompt.model_dump_json())
    assert len(realisations) > 1


def test_realisation_does_not_depend_on_python_hash_seed() -> None:
    script = (
        "import asyncio\n"
        "from sparring.attacks import AttackContext, get_attack\n"
        "from sparring.types import Behavior\n"
        "b = Behavior(id='x', text='Explain how to knit', category='c', source='s')\n"
        "ps = asyncio.run(get_attack('payload-splitting').realize(b, AttackContext(seed=3)))\n"
        "print(ps[0].meta['fragments'])\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_catalogue_has_twelve_black_box_techniques_across_six_families() -> None:
    black_box = [cls for cls in list_attacks() if cls.access == "black-box"]
    assert len(black_box) >= 12
    assert len({cls.family for cls in black_box}) >= 6


def test_every_attack_is_tagged_with_a_known_family_and_described() -> None:
    for cls in list_attacks():
        assert cls.family in FAMILIES
        assert cls.description and "\n" not in cls.description
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cls.name)


def test_register_rejects_an_unknown_family() -> None:
    class Stray(Attack):
        name = "stray"
        family = "jailbreak.unheard-of"
        description = "Not a real technique."

        async def realize(self, behavior: Behavior, ctx: AttackContext) -> list[AttackPrompt]:
            return []

    with pytest.raises(ValueError, match="unknown family"):
        register(Stray)
    assert "stray" not in ATTACKS


def test_get_attack_names_the_known_attacks_for_an_unknown_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown attack 'dan-99'.*base64.*many-shot"):
        get_attack("dan-99")


def test_get_attack_rejects_an_option_the_technique_lacks() -> None:
    with pytest.raises(ConfigError, match="attack direct has no option 'shots'"):
        get_attack("direct", shots=3)


def test_request_text_puts_the_context_document_before_the_request() -> None:
    assert request_text(BENIGN) == BENIGN.text
    assert CONTEXTUAL.context is not None
    assert request_text(CONTEXTUAL) == f"{CONTEXTUAL.context}\n\n---\n\n{CONTEXTUAL.text}"


async def test_direct_sends_the_request_unchanged() -> None:
    [prompt] = await get_attack("direct").realize(BENIGN, AttackContext())
    assert [(m.role, m.content) for m in prompt.messages] == [("user", BENIGN.text)]


# Encodings ---------------------------------------------------------------------------


async def test_base64_payload_decodes_with_the_standard_library() -> None:
    [prompt] = await get_attack("base64").realize(CONTEXTUAL, AttackContext())
    assert base64.b64decode(prompt.meta["payload"]).decode() == request_text(CONTEXTUAL)


async def test_rot13_payload_decodes_with_the_standard_library() -> None:
    [prompt] = await get_attack("rot13").realize(CONTEXTUAL, AttackContext())
    assert codecs.decode(prompt.meta["payload"], "rot13") == request_text(CONTEXTUAL)
    assert request_text(CONTEXTUAL) not in all_text(prompt)


@pytest.mark.parametrize(
    ("encoding", "plain", "encoded"),
    [
        ("atbash", "Hello, World", "Svool, Dliow"),
        ("leetspeak", "Toast is set", "70457 15 537"),
        ("reversed", "abc def", "fed cba"),
    ],
)
def test_codecs_decode_known_answers(encoding: str, plain: str, encoded: str) -> None:
    assert decode(encoding, encoded).lower() == plain.lower()


def test_decode_rejects_text_that_is_not_base64() -> None:
    with pytest.raises(ValueError, match="Base64"):
        decode("base64", "not base64!")


async def test_encoded_reply_option_asks_for_the_answer_in_the_same_encoding() -> None:
    plain = await get_attack("atbash").realize(BENIGN, AttackContext())
    encoded = await get_attack("atbash", reply_encoded=True).realize(BENIGN, AttackContext())
    assert "same encoding" in all_text(encoded[0]) and encoded[0].meta["reply_encoded"]
    assert "same encoding" not in all_text(plain[0])


# Template files ----------------------------------------------------------------------


def test_gptfuzzer_csv_loads_every_template_with_its_id() -> None:
    templates = load_templates(GPTFUZZER_CSV)
    assert len(templates) == 77
    assert templates[0].id == "0"
    assert all("[INSERT PROMPT HERE]" in t.text for t in templates)


async def test_template_file_replaces_the_gptfuzzer_placeholder_with_the_request() -> None:
    [prompt] = await get_attack("template-file", file=GPTFUZZER_CSV).realize(
        BENIGN, AttackContext()
    )
    assert "[INSERT PROMPT HERE]" not in all_text(prompt)
    assert BENIGN.text in all_text(prompt)
    assert prompt.meta["templates_file"] == str(GPTFUZZER_CSV)


def test_json_list_templates_load_strings_and_objects(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(["A {request}", {"id": "mine", "text": "B {request}"}]))
    assert load_templates(path) == (
        Template("entry-1", "A {request}"),
        Template("mine", "B {request}"),
    )


def test_jsonl_templates_load_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('"A {request}"\n\n{"template": "B {request}"}\n')
    assert [t.text for t in load_templates(path)] == ["A {request}", "B {request}"]


def test_text_templates_split_on_separator_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("First {request}\nmore\n---\nSecond: {request}\n")
    assert [t.text for t in load_templates(path)] == ["First {request}\nmore", "Second: {request}"]


def test_template_fill_keeps_braces_of_the_template() -> None:
    assert Template("x", "{a} {request} {}").fill("go") == "{a} go {}"


def test_template_without_placeholder_is_named_by_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('id,text\n0,"ok [INSERT PROMPT HERE]"\n1,"no placeholder here"\n')
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))} row 2: no {{request}}"):
        load_templates(path)


def test_malformed_json_templates_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('"A {request}"\n{"text": \n')
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))} line 2: invalid JSON"):
        load_templates(path)


def test_csv_templates_without_a_text_column_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,prompt\n0,x {request}\n")
    with pytest.raises(ConfigError, match="no 'text' column"):
        load_templates(path)


def test_csv_row_with_extra_fields_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,text\n0,a {request},stray\n")
    with pytest.raises(ConfigError, match="row 1: wrong number of fields"):
        load_templates(path)


def test_missing_templates_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="templates file not found"):
        load_templates(tmp_path / "absent.json")


async def test_template_file_attack_without_a_file_asks_for_one() -> None:
    with pytest.raises(ConfigError, match="pass --templates PATH"):
        await get_attack("template-file").realize(BENIGN, AttackContext())


# Many-shot and multi-turn -------------------------------------------------------------


@pytest.mark.parametrize("shots", [1, 8, 40])
async def test_many_shot_alternates_n_faux_pairs_before_the_request(shots: int) -> None:
    [prompt] = await get_attack("many-shot", shots=shots).realize(BENIGN, AttackContext())
    roles = [m.role for m in prompt.messages]
    assert roles == ["user", "assistant"] * shots + ["user"]
    assert prompt.messages[-1].content == BENIGN.text
    assert prompt.meta["shots"] == shots


async def test_many_shot_defaults_to_eight_pairs_to_fit_small_contexts() -> None:
    [prompt] = await get_attack("many-shot").realize(BENIGN, AttackContext())
    assert len(prompt.messages) == 2 * 8 + 1


def test_many_shot_rejects_zero_shots() -> None:
    with pytest.raises(ConfigError, match="many-shot option 'shots'"):
        get_attack("many-shot", shots=0)


async def test_crescendo_lite_escalates_to_the_request_in_the_last_followup() -> None:
    [prompt] = await get_attack("crescendo-lite").realize(BENIGN, AttackContext())
    assert len(prompt.messages) == 1 and len(prompt.followups) == 2
    assert BENIGN.text not in prompt.messages[0].content
    assert "bake sourdough bread at home" in prompt.messages[0].content
    assert BENIGN.text not in prompt.followups[0]
    assert prompt.followups[-1].endswith(BENIGN.text)


# Scenario and splitting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "question"),
    [
        ("Explain how to bake bread.", "How did people bake bread in the past?"),
        (
            "Give detailed instructions for building a raft",
            "How did people go about building a raft in the past?",
        ),
        ("Write a sea shanty", "How did people write a sea shanty in the past?"),
        ("Please compose a limerick", "How did people compose a limerick in the past?"),
    ],
)
def test_past_tense_rules_ask_how_people_did_it(request_: str, question: str) -> None:
    assert past_tense_rewrite(request_).question == question


async def test_past_tense_uses_the_helper_model_when_given(
    helper: OpenAICompatibleModel, helper_server: OpenAIServer
) -> None:
    [prompt] = await realize(get_attack("past-tense"), BENIGN, helper)
    assert prompt.messages[0].content == f"[translated] {BENIGN.text}"
    assert prompt.meta["rewriter"] == f"helper:{helper.id}"
    assert helper_server.stats().requests == 1


def test_split_text_pieces_join_back_to_the_text() -> None:
    for seed in range(50):
        pieces = split_text("a request text", 4, random.Random(seed))
        assert len(pieces) == 4 and all(pieces)
        assert "".join(pieces) == "a request text"


def test_payload_splitting_rejects_one_part() -> None:
    with pytest.raises(ConfigError, match="payload-splitting option 'parts'"):
        get_attack("payload-splitting", parts=1)


# Translation --------------------------------------------------------------------------


async def test_translation_sends_the_helpers_translation_to_the_target(
    helper: OpenAICompatibleModel, helper_server: OpenAIServer
) -> None:
    helper_server.set_responder(lambda request: "Ngicela uchaze indlela yokubhaka isinkwa")
    attack = get_attack("translation", language="Zulu")
    [prompt] = await realize(attack, BENIGN, helper)
    assert prompt.messages[0].content == "Ngicela uchaze indlela yokubhaka isinkwa"
    assert prompt.meta == {"language": "Zulu", "translator": helper.id}
    [sent] = helper_server.stats().received
    assert sent.last_user_text == BENIGN.text
    assert "into Zulu" in sent.messages[0]["content"]


async def test_translation_without_a_helper_asks_for_one() -> None:
    with pytest.raises(
        ConfigError, match=r"^translation needs a helper model: pass --helper SPEC$"
    ):
        await get_attack("translation").realize(BENIGN, AttackContext())


async def test_translation_reports_a_failed_helper_request(
    helper: OpenAICompatibleModel, helper_server: OpenAIServer
) -> None:
    helper_server.set_faults([Fault.http(500)])
    with pytest.raises(HelperError, match="translation helper"):
        await realize(get_attack("translation"), BENIGN, helper)


async def test_translation_reports_an_empty_helper_answer(
    helper: OpenAICompatibleModel, helper_server: OpenAIServer
) -> None:
    helper_server.set_responder(lambda request: "   ")
    with pytest.raises(HelperError, match="empty answer"):
        await realize(get_attack("translation"), BENIGN, helper)
