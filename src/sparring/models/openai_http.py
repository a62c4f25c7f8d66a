"""The chat-completions HTTP backend: vLLM, Ollama, llama.cpp server, TGI, OpenAI and the like.

aiohttp rather than httpx: on loopback at 64 requests in flight it cost ~0.3 ms of CPU per
request against httpx's 12.5 ms (see the architecture notes), and a scan is thousands of
small requests. One pooled session per event loop, sized to ``max_concurrency``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import random
import time
from collections.abc import Sequence

import aiohttp
from yarl import URL

from sparring.errors import ConfigError, EndpointError
from sparring.models.backends import ModelSpec, backend
from sparring.models.base import ChatModel
from sparring.models.openai_wire import (
    AttemptFailure,
    json_object,
    parse_answer,
    parse_retry_after,
    request_body,
    short_error,
)
from sparring.models.options import ModelOptions
from sparring.types import Completion, GenerationParams, Message

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 10.0
"""Longest wait for each pre-flight ``GET /models`` attempt, seconds (at most timeout_s)."""


class _Secret:
    """Holds the API key so that repr() and vars() of the model never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('***')"


class _Pacer:
    """Spaces request starts at least ``1 / rate`` seconds apart, shared by all callers.

    Each caller books the next free slot before sleeping, so concurrent callers queue up
    in booking order without a lock (asyncio runs the booking atomically).
    """

    def __init__(self, requests_per_second: float) -> None:
        self._interval = 1.0 / requests_per_second
        self._next_slot = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


class OpenAICompatibleModel(ChatModel):
    """A model served over the OpenAI chat-completions protocol.

    ``base_url`` is the API root (``http://HOST:PORT/v1``). At most ``max_concurrency``
    requests are in flight; ``requests_per_second`` (None for no limit) spaces request
    starts evenly across all calls on this instance. Each attempt may take ``timeout_s``
    seconds. HTTP 429, 5xx, timeouts and connection errors are retried up to
    ``max_retries`` times with exponential backoff and full jitter (``backoff_base_s``
    doubling per retry, capped at ``backoff_max_s`` seconds), waiting at least the server's
    ``Retry-After`` (capped at ``retry_after_max_s`` seconds). Other 4xx and malformed
    responses are not retried. A request that fails for good is returned as
    ``Completion.failure`` with the cause; nothing is raised per request. ``check()``
    pre-flights the server once, before a run. ``api_key_env`` names the environment
    variable the key came from, for error messages.
    """

    def __init__(
        self,
        model: str,
        *,
        model_id: str,
        base_url: str,
        api_key: str | None,
        api_key_env: str | None = None,
        max_concurrency: int = 16,
        requests_per_second: float | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        retry_after_max_s: float = 60.0,
    ) -> None:
        url = URL(base_url)
        _require(
            url.scheme in ("http", "https") and bool(url.host),
            f"base_url {base_url!r} is not an http(s) address; pass --base-url http://HOST:PORT/v1",
        )
        _require(max_concurrency >= 1, f"max_concurrency must be ≥ 1, got {max_concurrency}")
        _require(
            requests_per_second is None or requests_per_second > 0,
            f"requests_per_second must be > 0 or None, got {requests_per_second}",
        )
        _require(timeout_s > 0, f"timeout_s must be > 0 seconds, got {timeout_s}")
        _require(max_retries >= 0, f"max_retries must be ≥ 0, got {max_retries}")
        _require(
            min(backoff_base_s, backoff_max_s, retry_after_max_s) >= 0,
            "backoff_base_s, backoff_max_s and retry_after_max_s must be ≥ 0 seconds",
        )
        self.id = model_id
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.requests_per_second = requests_per_second
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self._api_key = _Secret(api_key) if api_key else None
        self._chat_url = URL(f"{self.base_url}/chat/completions")
        self._models_url = URL(f"{self.base_url}/models")
        server = url.with_user(None).with_query(None).with_fragment(None)
        self._cache_identity = f"{model_id} model={model} at {str(server).rstrip('/')}"
        self._pacer = _Pacer(requests_per_second) if requests_per_second else None
        self._jitter = random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"OpenAICompatibleModel(id={self.id!r}, base_url={self.base_url!r})"

    @property
    def cache_identity(self) -> str:
        """The spec, the model name sent and the server (its URL normalised, without any
        user or password in it); the API key is left out, since it changes who pays, not
        what the model answers."""
        return self._cache_identity

    async def generate(
        self, conversations: Sequence[Sequence[Message]], params: GenerationParams
    ) -> list[Completion]:
        """Answer each conversation concurrently; failures come back as failed Completions.

        ``latency_s`` of each Completion is the wall time in seconds from sending its first
        attempt to its final outcome, retries and backoff included.
        """
        return list(await asyncio.gather(*(self._complete(c, params) for c in conversations)))

    async def check(self) -> None:
        """Raise EndpointError (one line) unless ``GET /models`` answers 2xx with JSON.

        Retried as requests are; each attempt waits at most ``CHECK_TIMEOUT_S`` seconds.
        A 404, an HTML page or a body that is not JSON means ``base_url`` is not the
        root of an OpenAI-compatible API; 401 or 403 means the key is missing or rejected.
        """
        timeout_s = min(CHECK_TIMEOUT_S, self.timeout_s)
        outcome, attempts, _ = await self._request(self._models_url, None, timeout_s)
        problem = self._check_problem(outcome, attempts)
        if problem is not None:
            raise EndpointError(self._redact(problem))

    def _check_problem(self, outcome: bytes | AttemptFailure, attempts: int) -> str | None:
        url = self._models_url
        if isinstance(outcome, bytes):
            found = json_object(outcome)
            if isinstance(found, dict):
                return None
            return (
                f"{url} answered with a body that is {found}, so the server does not speak "
                "the OpenAI API; --base-url must be its API root, e.g. http://HOST:PORT/v1"
            )
        if outcome.status is None:
            return (
                f"cannot reach the model endpoint: {outcome.cause(attempts)}; "
                "start the server or fix --base-url"
            )
        if outcome.status == 404:
            return (
                f"{url} does not exist (HTTP 404): {self.base_url} is not the root of an "
                "OpenAI-compatible API; --base-url usually ends in /v1"
            )
        if outcome.status in (401, 403):
            return (
                f"{self.base_url} rejected the API key (HTTP {outcome.status}); {self._key_hint()}"
            )
        return f"{url} failed: {outcome.cause(attempts)}"

    def _key_hint(self) -> str:
        if self.api_key_env:
            return f"set a valid key in the environment variable {self.api_key_env}"
        sent = "no key was sent" if self._api_key is None else "the key sent is not valid"
        return (
            f"{sent}: put a valid key in an environment variable and name that variable in "
            "the api_key_env model option (YAML: target_options.api_key_env)"
        )

    async def aclose(self) -> None:
        """Close the HTTP session; the model cannot be used afterwards."""
        self._closed = True
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _session_for_loop(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._closed:
            raise RuntimeError(f"{self!r} was closed with aclose() and cannot be used again")
        loop = asyncio.get_running_loop()
        # A session and its semaphore belong to one event loop; a new loop needs new ones.
        if (
            self._session is None
            or self._semaphore is None
            or self._session.closed
            or self._loop is not loop
        ):
            headers = {"Content-Type": "application/json"}
            if self._api_key is not None:
                headers["Authorization"] = f"Bearer {self._api_key.reveal()}"
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_concurrency),
                headers=headers,
            )
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._loop = loop
        return self._session, self._semaphore

    async def _complete(
        self, conversation: Sequence[Message], params: GenerationParams
    ) -> Completion:
        payload = json.dumps(request_body(self.model, conversation, params)).encode("utf-8")
        outcome, attempts, started = await self._request(self._chat_url, payload, self.timeout_s)
        answer = parse_answer(outcome, self.base_url) if isinstance(outcome, bytes) else outcome
        latency_s = time.perf_counter() - started
        if isinstance(answer, AttemptFailure):
            return Completion.failure(self._redact(answer.cause(attempts)), latency_s=latency_s)
        return Completion(
            text=answer.text,
            finish_reason=answer.finish_reason,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            latency_s=latency_s,
            error=None,
        )

    async def _request(
        self, url: URL, payload: bytes | None, timeout_s: float
    ) -> tuple[bytes | AttemptFailure, int, float]:
        """POST ``payload`` (GET when None), retrying as the class describes; each attempt
        may take ``timeout_s`` seconds.

        Returns the 2xx body or the last failure, the attempts made, and when the first
        attempt was sent (``time.perf_counter()`` seconds; waiting for a concurrency slot
        before it does not count).
        """
        session, semaphore = self._session_for_loop()
        started: float | None = None
        attempts = 0
        while True:
            attempts += 1
            async with semaphore:
                if self._pacer is not None:
                    await self._pacer.wait()
                if started is None:
                    started = time.perf_counter()
                outcome = await self._attempt(session, url, payload, timeout_s)
            if isinstance(outcome, bytes) or not outcome.retryable or attempts > self.max_retries:
                return outcome, attempts, started
            delay = self._backoff_s(attempts, outcome.retry_after_s)
            logger.debug(
                "retrying %s in %.2f s after %s (attempt %d of %d)",
                self.id,
                delay,
                outcome.summary,
                attempts,
                self.max_retries + 1,
            )
            await asyncio.sleep(delay)

    def _backoff_s(self, attempts: int, retry_after_s: float | None) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempts - 1))
        delay = self._jitter.uniform(0.0, ceiling)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.retry_after_max_s))
        return delay

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        url: URL,
        payload: bytes | None,
        timeout_s: float,
    ) -> bytes | AttemptFailure:
        method = "GET" if payload is None else "POST"
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with session.request(method, url, data=payload, timeout=timeout) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                body = await resp.read()
        except TimeoutError:
            return AttemptFailure(f"timeout after {timeout_s:g} s", retryable=True)
        except aiohttp.ClientError as exc:
            return AttemptFailure(self._describe_connection(exc), retryable=True)
        if 200 <= status < 300:
            return body
        retryable = status == 429 or status >= 500
        return AttemptFailure(
            f"HTTP {status}",
            retryable=retryable,
            status=status,
            detail=short_error(body),
            retry_after_s=parse_retry_after(retry_after) if retryable else None,
        )

    def _describe_connection(self, exc: aiohttp.ClientError) -> str:
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return f"connection failed: cannot resolve the host of {self.base_url}"
        if isinstance(exc, aiohttp.ClientConnectorError):
            refused = isinstance(exc.os_error, ConnectionRefusedError) or (
                exc.os_error.errno == errno.ECONNREFUSED
            )
            if refused:
                return f"connection refused to {self.base_url}"
            return f"connection failed to {self.base_url}: {exc.strerror or type(exc).__name__}"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return f"connection closed by {self.base_url} before a response"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return f"connection broke while reading the response from {self.base_url}"
        if isinstance(exc, aiohttp.ClientConnectionError):
            return f"connection error with {self.base_url}: {type(exc).__name__}"
        return f"invalid HTTP exchange with {self.base_url}: {type(exc).__name__}"

    def _redact(self, text: str) -> str:
        if self._api_key is None:
            return text
        return text.replace(self._api_key.reveal(), "***")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@backend(
    "openai-compatible",
    description="any server speaking the OpenAI chat-completions protocol; needs base_url",
)
@backend("vllm", description="a vLLM server", base_url="http://127.0.0.1:8000/v1")
@backend("ollama", description="an Ollama server", base_url="http://127.0.0.1:11434/v1")
def build_http_model(spec: ModelSpec, options: ModelOptions) -> OpenAICompatibleModel:
    """An OpenAICompatibleModel for ``PROVIDER/MODEL``; the key, if any, is read from the
    environment variable ``options.api_key_env``."""
    if options.base_url is None:
        raise ConfigError(f"{spec} needs a server address: pass --base-url http://HOST:PORT/v1")
    key_env = options.api_key_env
    return OpenAICompatibleModel(
        spec.name,
        model_id=str(spec),
        base_url=options.base_url,
        api_key=os.environ.get(key_env) if key_env else None,
        api_key_env=key_env,
        max_concurrency=options.max_concurrency,
        requests_per_second=options.requests_per_second,
        timeout_s=options.timeout_s,
        max_retries=options.max_retries,
    )


@backend(
    "openai",
    description="the OpenAI API (key in OPENAI_API_KEY)",
    base_url="https://api.openai.com/v1",
    key_env="OPENAI_API_KEY",
)
def build_openai_model(spec: ModelSpec, options: ModelOptions) -> OpenAICompatibleModel:
    """Like ``build_http_model``, but a missing API key is an error up front."""
    if not (options.api_key_env and os.environ.get(options.api_key_env)):
        raise ConfigError(
            f"{spec} needs an API key in the environment variable {options.api_key_env}"
        )
    return build_http_model(spec, options)
