"""A server in a process of its own, for tests and benchmarks that must not share their
event loop (or CPU accounting) with it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


@contextmanager
def server_process(command: Sequence[str]) -> Iterator[str]:
    """Start ``command``, a server that prints its base URL as its first line of output
    (as ``python -m sparring.testing.openai_server --port 0`` does); yield that URL, and
    stop the server (SIGTERM, then up to 30 s to exit) on the way out."""
    server = subprocess.Popen(list(command), stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait(timeout=30)
