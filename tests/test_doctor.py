"""``sparring doctor``: every check passes on a working install, and each kind of trouble
(a native crash, an unwritable store, an unreachable endpoint) fails its own line with a fix.

The checks run for real: the packaged models, the embedded judge in a child process, a
loopback OpenAI-compatible server.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sparring.doctor import (
    CheckResult,
    check_data,
    check_decode,
    check_endpoint,
    check_packages,
    check_store,
    format_result,
    run_checks,
)
from sparring.testing.openai_server import OpenAIServer

SEGFAULT = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_check_passes_on_this_install(tmp_path: Path) -> None:
    said: list[CheckResult] = []
    with OpenAIServer() as server:
        results = run_checks(
            store=tmp_path / "runs.sqlite",
            model="openai-compatible/sparring-test",
            base_url=server.base_url,
            say=said.append,
        )
    assert said == results
    failed = [format_result(r) for r in results if not r.ok]
    assert failed == []
    by_name = {r.name.split(" ")[0]: r for r in results}
    for name in ("python", "cpu", "store", "embedded", "llama.cpp", "endpoint"):
        assert by_name[name].status == "ok", format_result(by_name[name])
    assert "tokens in" in by_name["llama.cpp"].detail


def test_a_segfaulting_decode_fails_only_the_decode_check(tmp_path: Path) -> None:
    results = run_checks(store=tmp_path / "runs.sqlite", smoke_code=SEGFAULT)
    failed = [r for r in results if not r.ok]
    assert [r.name for r in failed] == ["llama.cpp decode"]
    line = format_result(failed[0])
    assert line.startswith("FAIL  llama.cpp decode: crashed with SIGSEGV while decoding builtin/")
    assert "extra buffer types must stay off" in line
    assert "sparring doctor" in line


def test_a_hung_decode_fails_after_its_timeout() -> None:
    result = check_decode("import time; time.sleep(30)", timeout_s=0.5)
    assert not result.ok
    assert result.detail.startswith("no result within 0.5 s")


def test_a_store_under_a_regular_file_is_not_writable(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    result = check_store(tmp_path / "afile" / "runs.sqlite")
    assert result.status == "FAIL"
    assert result.fix is not None and "--store" in result.fix


def test_the_store_check_creates_nothing(tmp_path: Path) -> None:
    result = check_store(tmp_path / "new" / "deeper" / "runs.sqlite")
    assert result.status == "ok"
    assert list(tmp_path.iterdir()) == []


def test_a_live_loopback_endpoint_passes() -> None:
    with OpenAIServer() as server:
        result = check_endpoint("openai-compatible/sparring-test", server.base_url)
    assert result.status == "ok", format_result(result)


def test_a_closed_port_fails_the_endpoint_check() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    result = check_endpoint("openai-compatible/sparring-test", url)
    assert result.status == "FAIL"
    assert "cannot reach" in result.detail
    assert result.fix is not None and "--base-url" in result.fix


def test_a_local_model_is_no_endpoint() -> None:
    assert check_endpoint("builtin/smollm2-135m", None).status == "skip"


def test_a_missing_optional_feature_is_skipped_with_its_install_line() -> None:
    result = check_packages("train", [("no-such-dist>=1", "no-such-dist", ">=1")])
    assert result.status == "skip"
    assert result.fix == "pip install 'no-such-dist>=1'"


def test_a_wrong_pinned_version_fails() -> None:
    result = check_packages("local", [("pydantic==0.0.1", "pydantic", "==0.0.1")])
    assert result.status == "FAIL"
    assert result.fix == "pip install 'pydantic==0.0.1'"


def test_a_missing_data_folder_only_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARRING_DATA_DIR", str(tmp_path / "nowhere"))
    result = check_data()
    assert result.status == "warn"
    assert result.fix is not None and "SPARRING_DATA_DIR" in result.fix
