"""Where data files live: the local data directory, the download cache, and the mapping of
``http(s)://`` and ``hf://datasets/...`` addresses onto cached local files.

Nothing here touches the network unless the user passed a URL: the default data directory
is a local folder, and a URL that is already in the cache is read from disk.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from sparring.errors import DataError
from sparring.paths import DATA_DIR_ENV, data_dir, data_download_dir

__all__ = [
    "DATA_DIR_ENV",
    "cached_path",
    "data_dir",
    "download",
    "hub_url",
    "is_remote",
    "localize",
]

HUB_ENDPOINT_ENV = "HF_ENDPOINT"
"""The Hugging Face hub's own variable for its base address (mirrors, private hubs)."""

DEFAULT_HUB_ENDPOINT = "https://huggingface.co"

DOWNLOAD_TIMEOUT_S = 60.0
"""Seconds to wait for a download to answer before giving up."""

_HUB_PATTERN = re.compile(
    r"^hf://datasets/(?P<owner>[^/@]+)/(?P<name>[^/@]+)(@(?P<revision>[^/]+))?/(?P<file>.+)$"
)


def is_remote(location: str) -> bool:
    """True when ``location`` is an ``http(s)://`` URL or an ``hf://`` hub shorthand."""
    return location.startswith(("http://", "https://", "hf://"))


def hub_url(location: str) -> str:
    """The download URL for ``hf://datasets/OWNER/NAME[@REVISION]/FILE``.

    The revision defaults to ``main``; the hub's address comes from ``$HF_ENDPOINT`` when
    set, so mirrors work unchanged.
    """
    match = _HUB_PATTERN.match(location)
    if match is None:
        raise DataError(
            f"{location}: not a hub address; write hf://datasets/OWNER/NAME/FILE "
            "(optionally NAME@REVISION)"
        )
    endpoint = os.environ.get(HUB_ENDPOINT_ENV) or DEFAULT_HUB_ENDPOINT
    revision = urllib.parse.quote(match["revision"] or "main", safe="")
    file_part = urllib.parse.quote(match["file"], safe="/")
    return (
        f"{endpoint.rstrip('/')}/datasets/{match['owner']}/{match['name']}"
        f"/resolve/{revision}/{file_part}"
    )


def cached_path(url: str) -> Path:
    """Where the download of ``url`` is (or will be) kept: a name keyed by the URL's hash
    that ends in the URL's own file name, so readers can still tell ``.gz`` or ``.jsonl``."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    last = Path(urllib.parse.urlparse(url).path).name or "download"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", last)
    return data_download_dir() / f"{digest}-{safe}"


def download(url: str) -> Path:
    """The local copy of ``url``, fetched with urllib on first use and cached after.

    The file is written under a temporary name and renamed when complete, so an interrupted
    download never leaves a truncated file that a later run would trust.
    """
    target = cached_path(url)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "sparring"})
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    tmp_path = Path(tmp_name)
    try:
        with (
            os.fdopen(handle, "wb") as sink,
            urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
        ):
            while chunk := response.read(1 << 16):
                sink.write(chunk)
        tmp_path.replace(target)
    except urllib.error.HTTPError as exc:
        raise DataError(
            f"{url}: download failed with HTTP {exc.code}; check the address, or download "
            "the file yourself and pass its local path"
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(
            f"{url}: download failed ({reason}); check the address and network, or download "
            "the file yourself and pass its local path"
        ) from exc
    finally:
        tmp_path.unlink(missing_ok=True)
    return target


def localize(location: str | Path) -> Path:
    """A local path for ``location``: URLs and hub shorthands are downloaded (or found in
    the cache); anything else is taken as a local path, ``~`` expanded."""
    if isinstance(location, str) and is_remote(location):
        url = hub_url(location) if location.startswith("hf://") else location
        return download(url)
    return Path(location).expanduser()
