"""Every model role of a scan takes its own options: the target, the judge's model and the
helper each reach their own server, from a config dict and from a YAML file alike."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sparring.errors import ConfigError
from sparring.models import ModelOptions, ModelRole, resolve_model
from sparring.models.openai_http import OpenAICompatibleModel
from sparring.scan import load_config, make_config, run_scan
from sparring.scan.config import ScanConfig, judge_settings
from sparring.store import RunStore
from sparring.testing import OpenAIServer
from sparring.testing.scripting import ChatRequest

TRANSLATION = "Ngicela ungitshele indlela yokwenza lokhu."


def judge_says_no(request: ChatRequest) -> str:
    return "no"


def helper_translates(request: ChatRequest) -> str:
    return TRANSLATION


def fields(target_url: str, judge_url: str, helper_url: str) -> dict[str, Any]:
    return {
        "target": "openai-compatible/target",
        "target_options": {"base_url": target_url, "max_retries": 0},
        "judge": "harmbench:openai-compatible/judge",
        "judge_options": {"base_url": judge_url, "max_retries": 0},
        "helper": "openai-compatible/helper",
        "helper_options": {"base_url": helper_url, "max_retries": 0},
        "attacks": ["translation"],
        "limit": 2,
        "max_tokens": 16,
    }


async def scan_on_three_servers(tmp_path: Path, config_of: Any) -> None:
    """Run a translation scan with each role on its own loopback server; every server must
    have answered the requests of its role and none of another's."""
    async with (
        OpenAIServer(model_name="target") as target,
        OpenAIServer(model_name="judge", responder=judge_says_no) as judge,
        OpenAIServer(model_name="helper", responder=helper_translates) as helper,
    ):
        config: ScanConfig = config_of(target.base_url, judge.base_url, helper.base_url)
        store = RunStore(tmp_path / "runs.sqlite")
        try:
            result = await run_scan(config, store, progress=False)
            attempts = list(store.iter_attempts(result.run_id))
        finally:
            store.close()
    served = {"target": target, "judge": judge, "helper": helper}
    for role, server in served.items():
        received = server.stats().received
        assert received, f"the {role} server received no request"
        assert {r.body["model"] for r in received} == {role}
    assert attempts
    target_prompts = [r.body["messages"][-1]["content"] for r in target.stats().received]
    assert any(TRANSLATION in prompt for prompt in target_prompts)


async def test_each_role_reaches_its_own_server_from_config_fields(tmp_path: Path) -> None:
    await scan_on_three_servers(tmp_path, lambda *urls: make_config(fields(*urls)))


async def test_each_role_reaches_its_own_server_from_a_yaml_file(tmp_path: Path) -> None:
    def from_yaml(target_url: str, judge_url: str, helper_url: str) -> ScanConfig:
        path = tmp_path / "scan.yaml"
        path.write_text(
            "target: openai-compatible/target\n"
            f"target_options: {{base_url: '{target_url}', max_retries: 0}}\n"
            "judge: harmbench:openai-compatible/judge\n"
            f"judge_options: {{base_url: '{judge_url}', max_retries: 0}}\n"
            "helper: openai-compatible/helper\n"
            "helper_options:\n"
            f"  base_url: '{helper_url}'\n"
            "  max_retries: 0\n"
            "attacks: [translation]\n"
            "limit: 2\n"
            "max_tokens: 16\n",
            encoding="utf-8",
        )
        return load_config(path)

    await scan_on_three_servers(tmp_path, from_yaml)


def test_an_unknown_role_option_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="judge_options"):
        make_config({"judge_options": {"base_ulr": "http://127.0.0.1:1/v1"}})


async def test_a_model_role_resolves_like_its_spec_and_options() -> None:
    role = ModelRole(
        spec="openai-compatible/m",
        options=ModelOptions(base_url="http://127.0.0.1:9/v1", max_concurrency=3),
    )
    model = resolve_model(role)
    assert isinstance(model, OpenAICompatibleModel)
    assert model.id == "openai-compatible/m"
    assert model.base_url == "http://127.0.0.1:9/v1"
    assert model.cache_identity == resolve_model(role.spec, role.options).cache_identity
    await model.aclose()


def test_a_model_role_takes_no_separate_options() -> None:
    role = ModelRole(spec="vllm/m")
    with pytest.raises(TypeError):
        resolve_model(role, ModelOptions())


def test_provider_defaults_fill_in_what_the_options_leave_unset() -> None:
    model = resolve_model("ollama/llama3:8b")
    assert isinstance(model, OpenAICompatibleModel)
    assert model.base_url == "http://127.0.0.1:11434/v1"


async def test_each_role_reaches_its_own_server_from_the_command_line(tmp_path: Path) -> None:
    async with (
        OpenAIServer(model_name="target") as target,
        OpenAIServer(model_name="judge", responder=judge_says_no) as judge,
        OpenAIServer(model_name="helper", responder=helper_translates) as helper,
    ):
        argv = [
            *("scan", "--target", "openai-compatible/target", "--base-url", target.base_url),
            *("--judge", "harmbench:openai-compatible/judge", "--judge-base-url", judge.base_url),
            *("--helper", "openai-compatible/helper", "--helper-base-url", helper.base_url),
            *("--model-option", "judge.max_retries=0", "--model-option", "helper.timeout_s=30"),
            *("--attacks", "translation", "--attack-option", "translation.language=zu"),
            *("--limit", "2", "--max-tokens", "16", "--no-progress"),
            *("--store", str(tmp_path / "runs.sqlite"), "--out", str(tmp_path / "out")),
        ]
        done = await asyncio.to_thread(
            subprocess.run,
            [str(Path(sys.executable).with_name("sparring")), *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    for role, server in {"target": target, "judge": judge, "helper": helper}.items():
        received = server.stats().received
        assert received and {r.body["model"] for r in received} == {role}
    with RunStore(tmp_path / "runs.sqlite") as store:
        [run] = store.list_runs()
    assert run.config["judge_options"]["max_retries"] == 0
    assert run.config["helper_options"]["timeout_s"] == 30
    assert run.config["attacks"] == [{"name": "translation", "language": "zu"}]


def test_the_escalation_band_is_a_judge_setting_of_the_scan() -> None:
    config = make_config({"judge": "escalate:rules,rules", "judge_band": "0.1, 0.9"})
    assert judge_settings(config).band == (0.1, 0.9)
    assert judge_settings(config).model == config.judge_options
    with pytest.raises(ConfigError, match="judge_band"):
        make_config({"judge_band": "0.9,0.1"})
