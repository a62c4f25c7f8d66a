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
import random
import time
from collections.abc import Sequence

import aiohttp
from yarl import URL

from sparring.errors import ConfigError, EndpointError
from sparring.models.base import ChatModel
from sparring.models.openai_wire import (
    Answer,
    AttemptFailure,
    parse_answer,
    parse_retry_after,
    request_body,
    short_error,
)
from sparring.types import Completion, GenerationParams, Message

logger = logging.getLogger(__name__)


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
    ``Completion.failure`` with the cause; nothing is raised per request.
    """

    def __init__(
        self,
        model: str,
        *,
        model_id: str,
        base_url: str,
        api_key: str | None,
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
        self.max_concurrency = max_concurrency
        self.requests_per_second = requests_per_second
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self._api_key = _Secret(api_key) if api_key else None
        self._chat_url = URL(f"{self.base_url}/chat/completions")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._pacer = _Pacer(requests_per_second) if requests_per_second else None
        self._jitter = random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"OpenAICompatibleModel(id={self.id!r}, base_url={self.base_url!r})"

    async def generate(
        self, conversations: Sequence[Sequence[Message]], params: GenerationParams
    ) -> list[Completion]:
        """Answer each conversation concurrently; failures come back as failed Completions.

        ``latency_s`` of each Completion is the wall time in seconds from sending its first
        attempt to its final outcome, retries and backoff included.
        """
        return list(await asyncio.gather(*(self._complete(c, params) for c in conversations)))

    async def check_endpoint(self, timeout_s: float = 10.0) -> None:
        """Raise EndpointError (one line) unless the server answers ``GET /models``.

        Waits at most ``timeout_s`` seconds (bounded by the request timeout). An answer
        of 401 or 403 means the key is rejected and raises too; any other answer, 404
        included (some servers lack /models), shows the server is there.
        """
        session, _ = self._session_for_loop()
        limit = min(timeout_s, self.timeout_s)
        try:
            async with session.get(
                f"{self.base_url}/models", timeout=aiohttp.ClientTimeout(total=limit)
            ) as response:
                status = response.status
                await response.read()
        except TimeoutError:
            raise EndpointError(
                f"model endpoint {self.base_url} did not answer within {limit:g} s; "
                "check that the server is running and --base-url is right"
            ) from None
        except aiohttp.ClientError as exc:
            raise EndpointError(
                f"cannot reach the model endpoint: {self._describe_connection(exc)}; "
                "start the server or fix --base-url"
            ) from None
        if status in (401, 403):
            raise EndpointError(
                f"model endpoint {self.base_url} rejected the API key (HTTP {status}); "
                "set a valid key in the environment variable named by --api-key-env"
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
        session, semaphore = self._session_for_loop()
        payload = json.dumps(request_body(self.model, conversation, params)).encode("utf-8")
        started: float | None = None
        attempts = 0
        while True:
            attempts += 1
            async with semaphore:
                if self._pacer is not None:
                    await self._pacer.wait()
                if started is None:
                    started = time.perf_counter()
                outcome = await self._attempt(session, payload)
            if isinstance(outcome, Answer):
                return Completion(
                    text=outcome.text,
                    finish_reason=outcome.finish_reason,
                    prompt_tokens=outcome.prompt_tokens,
                    completion_tokens=outcome.completion_tokens,
                    latency_s=time.perf_counter() - started,
                    error=None,
                )
            if not outcome.retryable or attempts > self.max_retries:
                cause = self._redact(outcome.cause(attempts))
                return Completion.failure(cause, latency_s=time.perf_counter() - started)
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
        self, session: aiohttp.ClientSession, payload: bytes
    ) -> Answer | AttemptFailure:
        try:
            async with session.post(self._chat_url, data=payload, timeout=self._timeout) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                body = await resp.read()
        except TimeoutError:
            return AttemptFailure(f"timeout after {self.timeout_s:g} s", retryable=True)
        except aiohttp.ClientError as exc:
            return AttemptFailure(self._describe_connection(exc), retryable=True)
        if 200 <= status < 300:
            return parse_answer(body, self.base_url)
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
