"""Serving the viewer: bind, say where, and run until Ctrl-C."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from sparring.errors import ConfigError
from sparring.view.app import make_app
from sparring.view.reader import StoreWorker

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    store: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    reviewer: str,
    say: Callable[[str], None],
) -> None:
    """Serve the store at ``http://host:port/`` until interrupted (Ctrl-C or SIGTERM).

    The store must exist. ``port`` 0 picks a free port; the line ``say`` gets first names
    the address. A host other than a loopback address is warned about: anyone who can reach
    it can read every prompt and reply and add labels.
    """
    if not store.is_file():
        raise ConfigError(f"--store {store}: no run store there; run a scan first or pass --store")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port; pass 1-65535, or 0 for any free one")
    worker = StoreWorker(store)
    extra = frozenset() if _loopback(host) else frozenset({socket.gethostname().lower()})
    app = make_app(worker, store, reviewer, extra)
    try:
        asyncio.run(_run(app, host, port, say))
    except KeyboardInterrupt:
        say("stopped")
    finally:
        worker.close()


async def _run(app: web.Application, host: str, port: int, say: Callable[[str], None]) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as err:
            raise ConfigError(
                f"--host {host} --port {port}: cannot listen there ({err.strerror}); pass "
                "another --port, or 0 for any free one"
            ) from None
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
        say(f"sparring view: http://{shown}:{bound[1]}/ (Ctrl-C to stop)")
        if not _loopback(host):
            say(
                f"warning: --host {host} makes the viewer reachable from other machines; anyone "
                "who can reach it can read every prompt and reply in the store and add labels"
            )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
