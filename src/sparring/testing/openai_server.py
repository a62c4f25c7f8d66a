"""A real OpenAI-compatible chat server on loopback, with scriptable replies and faults.

Use it to test a pipeline end to end without a model: it speaks ``POST /v1/chat/completions``
and ``GET /v1/models``, answers after a fixed latency, and can be told to misbehave
(rate-limit, fail, stall, drop the connection, send broken or hand-built JSON) on chosen
requests. It counts what it saw so tests can check concurrency and request spacing from the
server side.

Three ways to run it:

- ``async with OpenAIServer() as server:`` serves from the running event loop;
- ``with OpenAIServer() as server:`` serves from a background thread with its own loop;
- ``python -m sparring.testing.openai_server --port 0 --latency-ms 100`` serves from a
  separate process and prints its base URL on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from sparring.testing.scripting import (
    ChatRequest,
    Fault,
    FaultPlan,
    Reply,
    Responder,
    ServerStats,
    echo_responder,
)


def _count_words(text: str) -> int:
    return len(text.split())


def _error_response(
    status: int, message: str, kind: str, retry_after: str | None = None
) -> web.Response:
    """An OpenAI-style error body: ``{"error": {"message": ..., "type": ...}}``."""
    return web.json_response(
        {"error": {"message": message, "type": kind}},
        status=status,
        headers={"Retry-After": retry_after} if retry_after else None,
    )


class OpenAIServer:
    """An OpenAI-compatible chat server on loopback with scriptable replies and faults.

    ``faults`` is either a sequence applied to chat requests in arrival order (entry *i*
    to request *i*; ``None`` entries and requests past its end are served normally) or a
    function of the request returning a Fault or None. ``models_fault`` is applied to every
    ``GET /models`` (e.g. ``Fault.raw("<html>")`` for a server that is not an OpenAI API).
    ``latency_ms`` delays every chat reply, in milliseconds. With ``require_api_key`` set,
    requests without ``Authorization: Bearer <key>`` get HTTP 401.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        responder: Responder = echo_responder,
        faults: FaultPlan = (),
        models_fault: Fault | None = None,
        model_name: str = "sparring-test",
        require_api_key: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.model_name = model_name
        self._responder = responder
        self._faults = faults
        self._models_fault = models_fault
        self._require_api_key = require_api_key
        self._lock = threading.Lock()
        self._received: list[ChatRequest] = []
        self._models_requests = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, the address clients use; only valid while running."""
        if self._bound_port is None:
            raise RuntimeError("OpenAIServer is not running; start it first")
        return f"http://{self.host}:{self._bound_port}/v1"

    def set_faults(self, faults: FaultPlan) -> None:
        """Replace the fault plan; sequence entries still match requests by arrival index,
        which counts from the start or the last reset_stats()."""
        with self._lock:
            self._faults = faults

    def set_responder(self, responder: Responder) -> None:
        """Replace the function that writes replies."""
        with self._lock:
            self._responder = responder

    def stats(self) -> ServerStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            received = tuple(self._received)
            return ServerStats(
                requests=len(received),
                models_requests=self._models_requests,
                max_in_flight=self._max_in_flight,
                arrivals=tuple(r.arrived_at for r in received),
                received=received,
            )

    def reset_stats(self) -> None:
        """Zero the counters and restart fault-sequence indices at request 0."""
        with self._lock:
            self._received.clear()
            self._models_requests = 0
            self._max_in_flight = self._in_flight

    async def start(self) -> str:
        """Start serving from the running event loop; returns the base URL."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        # Cancelling handlers whose client left keeps shutdown quick after "slow" faults.
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])
        return self.base_url

    async def stop(self) -> None:
        """Stop serving and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._bound_port = None

    async def __aenter__(self) -> OpenAIServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start_in_thread(self) -> str:
        """Start serving from a new background thread with its own loop; returns the URL."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="openai-server", daemon=True)
        thread.start()
        self._thread, self._thread_loop = thread, loop
        return asyncio.run_coroutine_threadsafe(self.start(), loop).result()

    def stop_thread(self) -> None:
        """Stop a server started with start_in_thread and join its thread."""
        loop, thread = self._thread_loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._thread, self._thread_loop = None, None

    def __enter__(self) -> OpenAIServer:
        self.start_in_thread()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_thread()

    def _authorised(self, request: web.Request) -> bool:
        if self._require_api_key is None:
            return True
        return request.headers.get("Authorization") == f"Bearer {self._require_api_key}"

    async def _models(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._models_requests += 1
        if not self._authorised(request):
            return _error_response(401, "invalid api key", "auth")
        if self._models_fault is not None:
            faulted = await _fault_response(request, self._models_fault)
            if faulted is not None:
                return faulted
        return web.json_response(
            {"object": "list", "data": [{"id": self.model_name, "object": "model"}]}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        arrived_at = time.monotonic()
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        with self._lock:
            chat = ChatRequest(
                len(self._received), arrived_at, body if isinstance(body, dict) else {}
            )
            self._received.append(chat)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            faults, responder = self._faults, self._responder
        try:
            return await self._answer(request, chat, body, faults, responder)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _answer(
        self,
        request: web.Request,
        chat: ChatRequest,
        body: object,
        faults: FaultPlan,
        responder: Responder,
    ) -> web.StreamResponse:
        if not self._authorised(request):
            return _error_response(401, "invalid api key", "auth")
        if not isinstance(body, dict) or not chat.messages:
            return _error_response(
                400, "body must be JSON with a messages array", "invalid_request"
            )
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
        fault = _pick_fault(faults, chat)
        if fault is not None:
            faulted = await _fault_response(request, fault)
            if faulted is not None:
                return faulted
        return web.json_response(self._completion(chat, responder))

    def _completion(self, chat: ChatRequest, responder: Responder) -> dict[str, Any]:
        answer = responder(chat)
        reply = Reply(answer) if isinstance(answer, str) else answer
        text, finish = reply.text, reply.finish_reason
        max_tokens = chat.body.get("max_tokens")
        words = text.split()
        # Words stand in for tokens, so a small max_tokens visibly truncates the echo.
        if isinstance(max_tokens, int) and max_tokens < len(words):
            text, finish = " ".join(words[:max_tokens]), "length"
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = sum(_count_words(str(m.get("content", ""))) for m in chat.messages)
        completion_tokens = reply.completion_tokens
        if completion_tokens is None:
            completion_tokens = _count_words(text)
        return {
            "id": f"chatcmpl-{chat.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(chat.body.get("model", self.model_name)),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _pick_fault(faults: FaultPlan, chat: ChatRequest) -> Fault | None:
    if callable(faults):
        return faults(chat)
    return faults[chat.index] if chat.index < len(faults) else None


async def _fault_response(request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """The response ``fault`` calls for, or None to answer normally (after a slow fault's
    wait)."""
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay_s)
        return None
    if fault.kind == "drop":
        return _drop(request)
    if fault.kind == "raw":
        return web.Response(status=fault.status, text=fault.body, content_type="application/json")
    return _error_response(fault.status, fault.body, "server_error", fault.retry_after)


def _drop(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.abort()
    # aiohttp discards a response written to an aborted transport, so nothing is sent.
    return web.Response(status=204)


async def _serve_until_signalled(server: OpenAIServer) -> None:
    url = await server.start()
    print(url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve from this process until SIGINT or SIGTERM; prints the base URL first."""
    parser = argparse.ArgumentParser(
        prog="python -m sparring.testing.openai_server",
        description="OpenAI-compatible loopback test server (echoes the last user message).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 lets the OS choose")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay per reply, ms")
    parser.add_argument("--model-name", default="sparring-test", help="id listed by /v1/models")
    args = parser.parse_args(argv)
    server = OpenAIServer(
        host=args.host, port=args.port, latency_ms=args.latency_ms, model_name=args.model_name
    )
    try:
        asyncio.run(_serve_until_signalled(server))
    except OSError as exc:
        raise SystemExit(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; pick another --port"
        ) from None


if __name__ == "__main__":
    main()
