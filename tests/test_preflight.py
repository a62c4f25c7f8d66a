"""Pre-flight checks: a model or judge that cannot work stops a run before its first attempt,
with one line that names the cause, instead of a run whose every attempt is an error."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sparring.errors import EndpointError
from sparring.judges.resolve import JudgeOptions, resolve_judge
from sparring.models import ModelOptions, resolve_model
from sparring.models.openai_http import OpenAICompatibleModel
from sparring.testing import Fault, OpenAIServer

SECRET_KEY = "sk-test-9f8e7d6c5b4a"
HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body>...</body>"


def make_model(base_url: str, **overrides: Any) -> OpenAICompatibleModel:
    """A client with test-sized backoff so that retries take milliseconds."""
    settings: dict[str, Any] = {
        "api_key": None,
        "max_retries": 2,
        "timeout_s": 5.0,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
    }
    settings.update(overrides)
    return OpenAICompatibleModel(
        "test-model", model_id="openai-compatible/test-model", base_url=base_url, **settings
    )


def closed_port_url() -> str:
    """The base URL of a loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def check_error(server: OpenAIServer, **overrides: Any) -> str:
    """The EndpointError line that checking ``server`` raises."""
    async with make_model(server.base_url, **overrides) as model:
        with pytest.raises(EndpointError) as caught:
            await model.check()
    return str(caught.value)


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer() as running:
        yield running


async def test_a_server_listing_its_models_passes(server: OpenAIServer) -> None:
    async with make_model(server.base_url) as model:
        await model.check()
    assert server.stats().models_requests == 1


async def test_html_page_is_reported_as_not_the_openai_api() -> None:
    async with OpenAIServer(models_fault=Fault.raw(HTML_PAGE)) as server:
        line, url = await check_error(server), server.base_url
    assert line == (
        f"{url}/models answered with a body that is HTML, not JSON: "
        "'<!DOCTYPE html> <html><head><title>Welcome to nginx!</title…', "
        "so the server does not speak the OpenAI API; "
        "--base-url must be its API root, e.g. http://HOST:PORT/v1"
    )


async def test_invalid_json_is_reported_as_not_the_openai_api() -> None:
    async with OpenAIServer(models_fault=Fault.raw("ok then {")) as server:
        line, url = await check_error(server), server.base_url
    assert line == (
        f"{url}/models answered with a body that is not JSON: 'ok then {{', "
        "so the server does not speak the OpenAI API; "
        "--base-url must be its API root, e.g. http://HOST:PORT/v1"
    )


async def test_missing_models_route_says_base_url_usually_ends_in_v1() -> None:
    async with OpenAIServer(models_fault=Fault.http(404, "no such route")) as server:
        line, url = await check_error(server), server.base_url
    assert line == (
        f"{url}/models does not exist (HTTP 404): {url} is not the "
        "root of an OpenAI-compatible API; --base-url usually ends in /v1"
    )


async def test_server_error_fails_after_the_retries_with_its_status() -> None:
    async with OpenAIServer(models_fault=Fault.http(500, "boom")) as server:
        line, url = await check_error(server, max_retries=2), server.base_url
    assert line == f"{url}/models failed: HTTP 500 after 3 attempts: boom"
    assert server.stats().models_requests == 3


async def test_rejected_key_names_the_environment_variable_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPARRING_TEST_KEY", SECRET_KEY)
    options = ModelOptions(api_key_env="SPARRING_TEST_KEY", max_retries=0)
    async with OpenAIServer(require_api_key="the-right-key") as server:
        url = server.base_url
        options = options.model_copy(update={"base_url": url})
        async with resolve_model("openai-compatible/test-model", options) as model:
            with pytest.raises(EndpointError) as caught:
                await model.check()
    assert str(caught.value) == (
        f"{url} rejected the API key (HTTP 401); "
        "set a valid key in the environment variable SPARRING_TEST_KEY"
    )
    assert SECRET_KEY not in str(caught.value)


async def test_missing_key_names_the_api_key_env_option() -> None:
    async with OpenAIServer(require_api_key="the-right-key") as server:
        line, url = await check_error(server), server.base_url
    assert line == (
        f"{url} rejected the API key (HTTP 401); no key was sent: put a valid key "
        "in an environment variable and name that variable in the api_key_env model option "
        "(YAML: target_options.api_key_env)"
    )


async def test_hostile_body_is_quoted_short_on_one_line_without_control_characters() -> None:
    body = "<b>\x1b[2J\x1b]0;pwned\x07\u202eevil\u202c</b>\r\n" + "x" * 500
    async with OpenAIServer(models_fault=Fault.raw(body)) as server:
        line = await check_error(server)
    quoted = line.split("HTML, not JSON: ", 1)[1].split(", so the server", 1)[0]
    assert len(quoted) == 2 + 60  # the quotes and at most 60 characters
    assert quoted == "'<b> [2J ]0;pwned evil </b> xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…'"
    assert all(ch.isprintable() for ch in line)


async def test_unreachable_server_fails_with_one_line() -> None:
    url = closed_port_url()
    async with make_model(url, max_retries=1) as model:
        with pytest.raises(EndpointError) as caught:
            await model.check()
    assert str(caught.value) == (
        f"cannot reach the model endpoint: connection refused to {url} (2 attempts); "
        "start the server or fix --base-url"
    )


async def test_llm_judge_with_an_unreachable_model_fails_its_check_with_one_line() -> None:
    url = closed_port_url()
    options = JudgeOptions(model=ModelOptions(base_url=url, max_retries=0))
    judge = resolve_judge("harmbench:openai-compatible/judge", options)
    try:
        with pytest.raises(EndpointError) as caught:
            await judge.check()
    finally:
        await judge.aclose()
    assert str(caught.value) == (
        f"cannot reach the model endpoint: connection refused to {url} (1 attempt); "
        "start the server or fix --base-url"
    )


async def test_an_ensemble_checks_every_member(server: OpenAIServer) -> None:
    url = closed_port_url()
    options = JudgeOptions(model=ModelOptions(base_url=url, max_retries=0))
    judge = resolve_judge("escalate:rules,harmbench:openai-compatible/judge", options)
    try:
        with pytest.raises(EndpointError, match="connection refused"):
            await judge.check()
    finally:
        await judge.aclose()


async def test_judges_without_a_remote_model_pass_their_check() -> None:
    judge = resolve_judge("majority:rules,rules")
    await judge.check()
