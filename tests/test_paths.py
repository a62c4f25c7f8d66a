"""One home for sparring's folders: each comes from its environment variable when set and
from a fixed default otherwise, read at call time."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparring import paths
from sparring.data.locations import cached_path
from sparring.judges.calibration import _card_file
from sparring.models import zoo


def test_the_cache_folder_follows_sparring_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path))
    assert paths.cache_dir() == tmp_path
    assert cached_path("https://example.org/a.csv").parent == tmp_path / "data"
    assert _card_file("embedded").parent == tmp_path / "judge_cards"
    assert zoo._assembled_path(zoo.ZOO["qwen2.5-coder-0.5b"]).parent == tmp_path / "models"


def test_defaults_apply_when_the_variables_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (paths.CACHE_ENV, paths.STORE_ENV, paths.DATA_DIR_ENV):
        monkeypatch.delenv(name, raising=False)
    assert paths.cache_dir() == Path.home() / ".cache" / "sparring"
    assert paths.default_store() == Path("sparring-runs") / "runs.sqlite"
    assert paths.data_dir().parts[-2:] == ("shared", "data")


def test_the_store_and_data_folders_follow_their_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.STORE_ENV, str(tmp_path / "mine.sqlite"))
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "data"))
    assert paths.default_store() == tmp_path / "mine.sqlite"
    assert paths.data_dir() == tmp_path / "data"
