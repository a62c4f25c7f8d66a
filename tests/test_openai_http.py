"""The OpenAI-compatible HTTP backend, driven against the real loopback test server."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sparring.errors import ConfigError
from sparring.models import ModelOptions, resolve_model
from sparring.models.openai_http import OpenAICompatibleModel
from sparring.testing import ChatRequest, Fault, OpenAIServer, Reply, scripted_responder
from sparring.types import GenerationParams, Message

PARAMS = GenerationParams(max_tokens=64)
SECRET_KEY = "sk-test-9f8e7d6c5b4a"


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer() as running:
        yield running


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


def ask(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


def closed_port_url() -> str:
    """The base URL of a loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def test_completion_carries_text_finish_reason_and_token_counts(
    server: OpenAIServer,
) -> None:
    conversation = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Name three primary colours"),
    ]
    async with make_model(server.base_url) as model:
        [completion] = await model.generate([conversation], PARAMS)
    assert completion.ok
    assert completion.text == "ECHO: Name three primary colours"
    assert completion.finish_reason == "stop"
    assert completion.prompt_tokens == 6
    assert completion.completion_tokens == 5
    assert completion.latency_s > 0


async def test_length_finish_reason_is_reported_as_length(server: OpenAIServer) -> None:
    async with make_model(server.base_url) as model:
        [completion] = await model.generate(
            [ask("a long question here")], GenerationParams(max_tokens=2)
        )
    assert completion.text == "ECHO: a"
    assert completion.finish_reason == "length"


async def test_request_body_carries_model_messages_and_generation_params(
    server: OpenAIServer,
) -> None:
    params = GenerationParams(max_tokens=7, temperature=0.5, top_p=0.9, seed=11, stop=("END",))
    async with make_model(server.base_url) as model:
        await model.generate([ask("hello")], params)
    body = server.stats().received[0].body
    assert body["model"] == "test-model"
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (7, 0.5, 0.9)
    assert (body["seed"], body["stop"]) == (11, ["END"])


async def test_unset_seed_and_empty_stop_are_left_out_of_the_request(
    server: OpenAIServer,
) -> None:
    async with make_model(server.base_url) as model:
        await model.generate([ask("hello")], PARAMS)
    body = server.stats().received[0].body
    assert "seed" not in body
    assert "stop" not in body


async def test_scripted_replies_come_back_in_order(server: OpenAIServer) -> None:
    server.set_responder(scripted_responder(["first", Reply("second", completion_tokens=9)]))
    async with make_model(server.base_url) as model:
        texts = [(await model.generate([ask("q")], PARAMS))[0] for _ in range(3)]
    assert [c.text for c in texts] == ["first", "second", "ECHO: q"]
    assert texts[1].completion_tokens == 9


async def test_refusal_field_is_read_when_content_is_null(server: OpenAIServer) -> None:
    body = (
        '{"choices": [{"message": {"role": "assistant", "content": null,'
        ' "refusal": "I cannot help with that."}, "finish_reason": "stop"}]}'
    )
    server.set_faults([Fault.raw(body)])
    async with make_model(server.base_url) as model:
        [completion] = await model.generate([ask("q")], PARAMS)
    assert completion.text == "I cannot help with that."
    assert (completion.prompt_tokens, completion.completion_tokens) == (0, 0)


async def test_retry_after_is_waited_out_before_the_retry_succeeds(
    server: OpenAIServer,
) -> None:
    server.set_faults([Fault.rate_limited(retry_after_s=1)])
    async with make_model(server.base_url) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    stats = server.stats()
    assert completion.text == "ECHO: hello"
    assert stats.requests == 2
    # The server's clock: the retry arrived no sooner than Retry-After allowed.
    assert stats.arrivals[1] - stats.arrivals[0] >= 1.0 - 1e-3


async def test_retry_after_longer_than_the_cap_is_cut_to_the_cap(server: OpenAIServer) -> None:
    server.set_faults([Fault.rate_limited(retry_after_s=3600)])
    async with make_model(server.base_url, retry_after_max_s=0.2) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    gap = server.stats().arrivals[1] - server.stats().arrivals[0]
    assert completion.ok
    assert 0.2 - 1e-3 <= gap < 30


async def test_server_errors_are_retried_until_success(server: OpenAIServer) -> None:
    server.set_faults([Fault.http(500), Fault.http(503)])
    async with make_model(server.base_url, max_retries=2) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.text == "ECHO: hello"
    assert server.stats().requests == 3


async def test_persistent_server_error_fails_after_max_retries_plus_one_attempts(
    server: OpenAIServer,
) -> None:
    server.set_faults(lambda request: Fault.http(500, "engine crashed"))
    async with make_model(server.base_url, max_retries=3) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert not completion.ok
    assert completion.finish_reason == "error"
    assert completion.text == ""
    assert completion.error == "HTTP 500 after 4 attempts: engine crashed"
    assert server.stats().requests == 4


async def test_client_error_other_than_429_is_not_retried(server: OpenAIServer) -> None:
    server.set_faults(lambda request: Fault.http(400, "max_tokens is too large"))
    async with make_model(server.base_url, max_retries=3) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.error == "HTTP 400 after 1 attempt: max_tokens is too large"
    assert server.stats().requests == 1


async def test_reply_slower_than_the_timeout_fails_with_timeout_cause(
    server: OpenAIServer,
) -> None:
    server.set_faults(lambda request: Fault.slow(2.0))
    async with make_model(server.base_url, timeout_s=0.2, max_retries=1) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.error == "timeout after 0.2 s (2 attempts)"
    assert server.stats().requests == 2


async def test_dropped_connections_are_retried_until_success(server: OpenAIServer) -> None:
    server.set_faults([Fault.drop(), Fault.drop()])
    async with make_model(server.base_url, max_retries=2) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.text == "ECHO: hello"
    assert server.stats().requests == 3


async def test_connection_dropped_every_time_fails_with_connection_cause(
    server: OpenAIServer,
) -> None:
    server.set_faults(lambda request: Fault.drop())
    async with make_model(server.base_url, max_retries=1) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    expected = f"connection closed by {server.base_url} before a response (2 attempts)"
    assert completion.error == expected
    assert server.stats().requests == 2


async def test_malformed_json_fails_without_retry(server: OpenAIServer) -> None:
    server.set_faults([Fault.malformed()])
    async with make_model(server.base_url) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.error is not None
    assert completion.error.startswith(f"malformed response from {server.base_url}")
    assert "not JSON" in completion.error
    assert server.stats().requests == 1


async def test_html_page_with_status_200_fails_with_a_short_quote(server: OpenAIServer) -> None:
    page = "<!DOCTYPE html><html><body>" + "Welcome! " * 200 + "</body></html>"
    server.set_faults([Fault.raw(page)])
    async with make_model(server.base_url) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.error == (
        f"malformed response from {server.base_url} (body is HTML, not JSON: "
        "'<!DOCTYPE html><html><body>Welcome! Welcome! Welcome! Welco…') (1 attempt)"
    )


async def test_empty_choices_list_fails_without_retry(server: OpenAIServer) -> None:
    server.set_faults([Fault.raw('{"id": "x", "choices": []}')])
    async with make_model(server.base_url) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.error == (
        f"malformed response from {server.base_url} (choices is empty) (1 attempt)"
    )
    assert server.stats().requests == 1


async def test_answer_without_message_content_fails(server: OpenAIServer) -> None:
    server.set_faults([Fault.raw('{"choices": [{"message": {"role": "assistant"}}]}')])
    async with make_model(server.base_url) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.error is not None
    assert "choices[0].message.content missing" in completion.error


async def test_concurrency_stays_within_limit_and_every_request_ends_with_an_outcome() -> None:
    def fail_marked(request: ChatRequest) -> Fault | None:
        return Fault.http(500, "marked") if request.last_user_text.startswith("fail") else None

    prompts = [f"fail-{i}" if i % 10 == 0 else f"q-{i}" for i in range(100)]
    async with (
        OpenAIServer(latency_ms=20, faults=fail_marked) as server,
        make_model(server.base_url, max_concurrency=8, max_retries=1) as model,
    ):
        completions = await model.generate([ask(p) for p in prompts], PARAMS)
    stats = server.stats()
    assert 2 <= stats.max_in_flight <= 8
    assert len(completions) == 100
    for prompt, completion in zip(prompts, completions, strict=True):
        if prompt.startswith("fail"):
            assert completion.error == "HTTP 500 after 2 attempts: marked"
        else:
            assert completion.text == f"ECHO: {prompt}"
    assert stats.requests == 90 + 10 * 2


async def test_waiting_for_a_concurrency_slot_does_not_count_against_the_timeout() -> None:
    # Ten 100 ms requests through two slots queue for up to 0.4 s, longer than the timeout.
    async with (
        OpenAIServer(latency_ms=100) as server,
        make_model(server.base_url, max_concurrency=2, timeout_s=0.3, max_retries=0) as model,
    ):
        completions = await model.generate([ask(f"q-{i}") for i in range(10)], PARAMS)
    assert [c.error for c in completions] == [None] * 10


async def test_request_rate_limit_spaces_arrivals_at_the_server(server: OpenAIServer) -> None:
    rate, n, burst = 20.0, 30, 2
    async with make_model(server.base_url, max_concurrency=16, requests_per_second=rate) as model:
        completions = await model.generate([ask(f"q-{i}") for i in range(n)], PARAMS)
    arrivals = sorted(server.stats().arrivals)
    assert all(c.ok for c in completions)
    assert len(arrivals) == n
    # Any k consecutive arrivals span at least (k - burst) intervals: scheduling jitter may
    # bunch a couple of requests, but the long-run rate holds.
    for i in range(n):
        for j in range(i + burst + 1, n):
            assert arrivals[j] - arrivals[i] >= (j - i - burst) / rate


async def test_generate_against_unreachable_endpoint_returns_connection_failures() -> None:
    url = closed_port_url()
    async with make_model(url, max_retries=1) as model:
        completions = await model.generate([ask("a"), ask("b")], PARAMS)
    assert [c.error for c in completions] == [f"connection refused to {url} (2 attempts)"] * 2


async def test_api_key_is_sent_as_a_bearer_token() -> None:
    async with (
        OpenAIServer(require_api_key=SECRET_KEY) as server,
        make_model(server.base_url, api_key=SECRET_KEY) as model,
    ):
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.text == "ECHO: hello"


async def test_api_key_quoted_back_by_the_server_is_redacted_from_the_cause(
    server: OpenAIServer,
) -> None:
    server.set_faults(lambda request: Fault.http(401, f"invalid key {SECRET_KEY}"))
    async with make_model(server.base_url, api_key=SECRET_KEY) as model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert completion.error == "HTTP 401 after 1 attempt: invalid key ***"


def test_api_key_is_absent_from_repr_and_attributes() -> None:
    model = make_model("http://127.0.0.1:1/v1", api_key=SECRET_KEY)
    assert SECRET_KEY not in repr(model)
    assert SECRET_KEY not in repr(vars(model))


def test_base_url_without_http_scheme_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="base_url 'localhost:8000/v1'"):
        make_model("localhost:8000/v1")


async def test_resolve_model_with_base_url_answers_end_to_end(server: OpenAIServer) -> None:
    model = resolve_model("openai-compatible/x", ModelOptions(base_url=server.base_url))
    async with model:
        [completion] = await model.generate([ask("hello")], PARAMS)
    assert model.id == "openai-compatible/x"
    assert completion.text == "ECHO: hello"
    assert server.stats().received[0].body["model"] == "x"


def test_resolve_model_without_base_url_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="--base-url"):
        resolve_model("openai-compatible/x")


async def test_reset_stats_restarts_the_fault_sequence(server: OpenAIServer) -> None:
    server.set_faults([Fault.http(500, "first request fails")])
    async with make_model(server.base_url, max_retries=0) as model:
        await model.generate([ask("a")], PARAMS)
        server.reset_stats()
        [completion] = await model.generate([ask("b")], PARAMS)
    assert completion.error == "HTTP 500 after 1 attempt: first request fails"
    assert server.stats().requests == 1


async def test_server_in_a_background_thread_serves_requests() -> None:
    with OpenAIServer() as server:
        async with make_model(server.base_url) as model:
            [completion] = await model.generate([ask("hello")], PARAMS)
        assert server.stats().requests == 1
    assert completion.text == "ECHO: hello"


async def test_server_module_runs_as_a_process_and_prints_its_url() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sparring.testing.openai_server",
        "--port",
        "0",
        "--latency-ms",
        "5",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
        async with make_model(url) as model:
            [completion] = await model.generate([ask("hello")], PARAMS)
        assert completion.text == "ECHO: hello"
    finally:
        process.terminate()
        return_code = await process.wait()
    assert return_code == 0
