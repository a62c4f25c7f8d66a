"""Attack options: set from a scan config (names and mappings) and from command-line flags,
validated by the attack's options model, and written back the way they were given."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparring.attacks import ATTACKS, AttackChoice
from sparring.errors import ConfigError
from sparring.scan.config import load_config, make_config, with_attack_options


def test_attacks_accept_names_and_mappings_with_options(tmp_path: Path) -> None:
    path = tmp_path / "scan.yaml"
    path.write_text("attacks: [direct, {name: many-shot, shots: 3}]\n")
    config = load_config(path)
    assert [(c.name, c.options) for c in config.attacks] == [
        ("direct", {}),
        ("many-shot", {"shots": 3}),
    ]
    assert config.attacks[1].build().options.shots == 3


def test_attacks_are_stored_as_given_a_bare_name_when_no_option_is_set() -> None:
    config = make_config({"attacks": "direct, translation", "helper": "openai-compatible/h"})
    assert config.model_dump(mode="json")["attacks"] == ["direct", "translation"]
    config = make_config({"attacks": [{"name": "translation", "language": "Zulu"}]})
    assert config.model_dump(mode="json")["attacks"] == [
        {"name": "translation", "language": "Zulu"}
    ]


def test_an_unknown_option_is_one_line_naming_the_attacks_options() -> None:
    with pytest.raises(
        ConfigError, match=r"^attack translation has no option 'lang'; its options: language$"
    ):
        make_config({"attacks": [{"name": "translation", "lang": "zu"}]})


def test_a_bad_option_value_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"^attack many-shot option 'shots'"):
        make_config({"attacks": [{"name": "many-shot", "shots": 0}]})


def test_an_attack_listed_twice_with_different_options_is_rejected() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        make_config({"attacks": [{"name": "many-shot", "shots": 2}, "many-shot"]})


def test_stored_templates_file_becomes_the_template_file_option() -> None:
    stored = {"attacks": ["direct", "template-file"], "templates_file": "t.csv"}
    config = make_config(stored)
    assert config.attacks[1] == AttackChoice.model_validate(
        {"name": "template-file", "file": "t.csv"}
    )
    assert "templates_file" not in config.model_dump()


def test_attack_option_flags_merge_into_the_attacks() -> None:
    merged = with_attack_options("direct,many-shot", ["many-shot.shots=5"])
    assert merged[1].options == {"shots": 5}
    assert make_config({"attacks": merged}).attacks == tuple(merged)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("many-shot.shot=5", "has no option 'shot'"),
        ("dan-99.x=1", "unknown attack 'dan-99'"),
        ("translation.language=zu", "the scan does not run attack translation"),
        ("many-shot", "write it as NAME.OPTION=VALUE"),
    ],
)
def test_a_bad_attack_option_flag_is_one_config_error(flag: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        with_attack_options("direct,many-shot", [flag])


def test_every_attack_declares_an_options_model() -> None:
    for _, cls in ATTACKS.items():
        assert cls.Options.model_config.get("extra") == "forbid"
