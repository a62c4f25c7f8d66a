"""Ctrl-C and SIGTERM during a run: routed to the engine, which stops the run resumably."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals_call(callback: Callable[[], None]) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``callback`` while inside, when the loop runs on the main
    thread: a CI cancel or a timeout then stops the run as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    installed: list[signal.Signals] = []
    for sig in _STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, callback)
        except (NotImplementedError, RuntimeError):
            break  # no signal support on this loop: the default handlers stay
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
            # remove_signal_handler installs Python's default; the caller's (e.g.
            # asyncio.run's) handler must come back.
            if previous[sig] is not None:
                signal.signal(sig, previous[sig])
