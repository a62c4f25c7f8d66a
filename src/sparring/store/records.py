"""What the store says about a run, and how run ids and version stamps are made."""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field

from sparring.types import Frozen
from sparring.version import __version__

RunStatus = Literal["running", "finished", "interrupted", "failed", "budget"]
"""``running`` until the engine ends it; then why it ended: every attempt done, Ctrl-C or
cancellation, an unrecoverable error, or a request/token/time budget spent."""

RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)

# Packages whose versions change results; recorded so a number can be traced to its stack.
_KEY_PACKAGES = (
    "pydantic",
    "aiohttp",
    "llama-cpp-python",
    "torch",
    "transformers",
    "peft",
)

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class RunOwner(Frozen):
    """The process that last started or resumed a run."""

    host: str = Field(description="Host name of the machine it ran on.")
    pid: int = Field(description="Its process id.")
    started: int | None = Field(
        None, description="Its start time, clock ticks after boot (Linux), to tell a reused pid."
    )

    def alive(self) -> bool | None:
        """True while that process runs, False once it is gone, None when it ran on another
        host (then nothing here can tell)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, under another user
        return self.started is None or _process_start(self.pid) in (None, self.started)


def _process_start(pid: int) -> int | None:
    """A process's start time in clock ticks after boot, where /proc tells it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so count after its ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def this_process() -> RunOwner:
    """The owner record of the calling process."""
    return RunOwner(host=socket.gethostname(), pid=os.getpid(), started=_process_start(os.getpid()))


class RunRecord(Frozen):
    """One run as stored: what was asked for, with what, and how it ended."""

    id: str = Field(description="Short sortable id, e.g. '20261122-0631-ab12'.")
    kind: str = Field(description="What produced the run: 'scan', 'dart', ...")
    created_at: datetime = Field(description="When the run was created (UTC).")
    finished_at: datetime | None = Field(None, description="When it ended (UTC); None if not.")
    status: RunStatus
    config: dict[str, Any] = Field(description="The run's configuration, as given.")
    seed: int = Field(description="Seed every random choice of the run derives from.")
    model_ids: dict[str, str] = Field(description="Model spec per role, e.g. target, judge.")
    versions: dict[str, Any] = Field(description="sparring, Python and key package versions.")
    owner: RunOwner | None = Field(None, description="The process that last ran it.")

    @property
    def state(self) -> str:
        """The status, except that a ``running`` run whose process is gone (SIGKILL, a
        crash, a power cut) reads ``killed``: it is not going on, and it can be resumed."""
        if self.status == "running" and self.owner is not None and self.owner.alive() is False:
            return "killed"
        return self.status


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_run_id(now: datetime) -> str:
    """A fresh id: UTC date and minute, then four random hex digits (e.g. 20261122-0631-ab12).

    Ids sort by creation minute; the suffix separates runs started in the same minute.
    """
    return f"{now:%Y%m%d-%H%M}-{secrets.token_hex(2)}"


def valid_run_id(run_id: str) -> bool:
    """True for ids a user can type and a shell will not mangle: letters, digits, . _ -."""
    return _RUN_ID.fullmatch(run_id) is not None


def environment_versions() -> dict[str, Any]:
    """Versions of sparring, Python and the installed key packages (absent ones omitted)."""
    packages: dict[str, str] = {}
    for name in _KEY_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"sparring": __version__, "python": platform.python_version(), "packages": packages}


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """A RunRecord from the runs table's columns, in their declared order."""
    run_id, kind, created_at, finished_at, status, config, seed, model_ids, versions, owner = row
    return RunRecord(
        id=run_id,
        kind=kind,
        created_at=datetime.fromisoformat(created_at),
        finished_at=None if finished_at is None else datetime.fromisoformat(finished_at),
        status=status,
        config=json.loads(config),
        seed=seed,
        model_ids=json.loads(model_ids),
        versions=json.loads(versions),
        owner=None if owner is None else RunOwner.model_validate_json(owner),
    )
