"""One model spec grammar everywhere: ``provider/model`` in scan configs, DART configs and
the API; a bare zoo name gets one error that says how to write it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparring.dart.config import DartConfig, dart_config, load_dart_config
from sparring.dart.slots import ModelSlot
from sparring.errors import ConfigError, ModelNotFoundError
from sparring.models import parse_spec

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_the_model_part_keeps_its_slashes() -> None:
    spec = parse_spec("hf/builtin/smollm2-135m")
    assert (spec.provider, spec.name) == ("hf", "builtin/smollm2-135m")
    assert str(spec) == "hf/builtin/smollm2-135m"


def test_a_spec_without_a_provider_names_the_providers() -> None:
    with pytest.raises(
        ModelNotFoundError, match=r"provider/model .*builtin, defended, (echo, )?hf, llamacpp"
    ):
        parse_spec("smollm2-135m")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_dart_configs_name_their_models_by_spec(path: Path) -> None:
    config = load_dart_config(path)
    assert config.target.startswith("builtin/")
    assert config.red.startswith("builtin/")


def test_a_bare_zoo_name_in_a_dart_config_says_to_write_builtin(tmp_path: Path) -> None:
    path = tmp_path / "dart.yaml"
    path.write_text("target: smollm2-135m\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"field 'target'.*write builtin/smollm2-135m"):
        load_dart_config(path)


def test_a_dart_model_must_be_one_llama_cpp_runs() -> None:
    with pytest.raises(ValueError, match=r"builtin/NAME .* llamacpp/PATH\.gguf"):
        DartConfig(red="hf/some/model")


def test_a_run_stored_with_bare_names_still_resumes_under_the_same_model_ids() -> None:
    config = dart_config({"target": "smollm2-135m", "red": "/models/red.gguf"}, "run r1")
    assert (config.target, config.red) == ("builtin/smollm2-135m", "llamacpp//models/red.gguf")
    assert ModelSlot("target", config.target, Path()).model_id == "target:smollm2-135m"
    assert ModelSlot("red", config.red, Path()).model_id == "red:/models/red.gguf"
