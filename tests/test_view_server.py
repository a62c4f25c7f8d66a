"""``sparring view`` as a server: it refuses foreign Host and Origin headers (DNS rebinding)
and untokened POSTs, answers in its own pages, exports labels in the labelled format, and
``sparring judge eval --from-store`` measures a judge on those labels.

The server is the installed command on a free loopback port, over a real store; the client
is plain aiohttp."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from sparring.judges import load_labelled
from sparring.store import RunStore
from view_fixtures import REVIEWER, SPARRING, Viewer, ViewStore, build_store, running_viewer


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> ViewStore:
    return build_store(tmp_path_factory.mktemp("view-server"))


@pytest.fixture(scope="module")
def viewer(stored: ViewStore) -> Iterator[Viewer]:
    with running_viewer(stored.path, stored.path.parent) as running:
        yield running


def fetch(
    viewer: Viewer,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """One request to the viewer (redirects not followed): status, headers and body."""

    async def go() -> tuple[int, dict[str, Any], str]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                viewer.url + path,
                headers=headers or {},
                data=data,
                allow_redirects=False,
            ) as answer,
        ):
            return answer.status, dict(answer.headers), await answer.text()

    return asyncio.run(go())


def host_of(viewer: Viewer) -> str:
    return urlsplit(viewer.url).netloc


def test_a_foreign_host_header_is_refused_and_the_servers_own_are_served(
    viewer: Viewer,
) -> None:
    port = urlsplit(viewer.url).port
    for host in ("attacker.example", f"attacker.example:{port}", f"127.0.0.1:{port + 1}"):
        status, _, body = fetch(viewer, "/", headers={"Host": host})
        assert status == 403, host
        assert "Host header refused" in body
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert fetch(viewer, "/", headers={"Host": host})[0] == 200, host


def test_a_request_from_another_site_is_refused(viewer: Viewer) -> None:
    status, _, body = fetch(viewer, "/version", headers={"Origin": "http://attacker.example"})
    assert status == 403
    assert "Origin header refused" in body
    assert fetch(viewer, "/version", headers={"Origin": f"http://{host_of(viewer)}"})[0] == 200


def test_pages_carry_a_policy_that_allows_only_the_servers_own_scripts(viewer: Viewer) -> None:
    status, headers, body = fetch(viewer, "/")
    assert status == 200
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert '<script src="/static/view.js"' in body
    assert not re.search(r"<script>|\son\w+=", body)
    assert "http://" not in body and "https://" not in body


def test_mistakes_get_a_page_that_says_what_is_wrong(viewer: Viewer, stored: ViewStore) -> None:
    status, _, body = fetch(viewer, "/runs/no-such-run")
    assert status == 404 and "no run no-such-run" in body
    status, _, body = fetch(viewer, f"/runs/{stored.scan_id}/attempts?verdict=maybe")
    assert status == 400 and "verdict=" in body
    status, _, body = fetch(viewer, f"/runs/{stored.scan_id}/attempts?page=0")
    assert status == 400 and "page=" in body
    assert fetch(viewer, "/static/passwd")[0] == 404
    assert fetch(viewer, '/labels.jsonl?run=x"y')[0] == 404


def _attempt_with_token(viewer: Viewer, stored: ViewStore) -> tuple[str, str]:
    with RunStore(stored.path) as store:
        key = store.attempts(stored.scan_id)[-1].spec.key
    page = f"/runs/{stored.scan_id}/attempts/{key}"
    found = re.search(r'name="_token" value="([^"]+)"', fetch(viewer, page)[2])
    assert found is not None
    return page, found.group(1)


def test_a_label_post_needs_the_servers_token_and_its_own_origin(
    viewer: Viewer, stored: ViewStore
) -> None:
    page, token = _attempt_with_token(viewer, stored)
    with RunStore(stored.path) as store:
        before = store.labels()
    own = {"Origin": f"http://{host_of(viewer)}"}
    form = {"label": "refusal", "note": "declines"}
    assert fetch(viewer, page + "/label", method="POST", data=form, headers=own)[0] == 403
    wrong = {**form, "_token": "guessed"}
    assert fetch(viewer, page + "/label", method="POST", data=wrong, headers=own)[0] == 403
    foreign = {"Origin": "http://attacker.example"}
    tokened = {**form, "_token": token}
    assert fetch(viewer, page + "/label", method="POST", data=tokened, headers=foreign)[0] == 403
    with RunStore(stored.path) as store:
        assert store.labels() == before
    status, headers, _ = fetch(viewer, page + "/label", method="POST", data=tokened, headers=own)
    assert status == 303 and headers["Location"] == page
    with RunStore(stored.path) as store:
        [*earlier, made] = store.labels()
    assert earlier == before
    assert (made.label, made.note, made.who) == ("refusal", "declines", REVIEWER)


def test_labels_export_as_jsonl_that_judge_eval_reads(
    viewer: Viewer, stored: ViewStore, tmp_path: Path
) -> None:
    with RunStore(stored.path) as store:
        for attempt, label in zip(store.attempts(stored.scan_id), ("unsafe", "safe"), strict=False):
            store.add_label(stored.scan_id, attempt.spec.key, label, "", "ann")
        wanted = {(lab.attempt_key, lab.label) for lab in store.labels()}
    status, headers, body = fetch(viewer, f"/labels.jsonl?run={stored.scan_id}")
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    exported = tmp_path / "labels.jsonl"
    exported.write_text(body, encoding="utf-8")
    items = load_labelled(exported)
    assert len(items) == len(wanted) == len(body.splitlines())
    gold = {"unsafe": (True, False), "safe": (False, False), "refusal": (False, True)}
    assert sorted((i.unsafe, i.refused) for i in items) == sorted(gold[lab] for _, lab in wanted)


def test_judge_eval_from_store_prints_agreement_with_intervals(stored: ViewStore) -> None:
    with RunStore(stored.path) as store:
        attempts = store.attempts(stored.scan_id)
        for attempt in attempts:
            if not any(lab.attempt_key == attempt.spec.key for lab in store.labels()):
                store.add_label(stored.scan_id, attempt.spec.key, "refusal", "", "ann")
    done = subprocess.run(
        [
            *(str(SPARRING), "judge", "eval", "--from-store", "--store", str(stored.path)),
            *("--run", stored.scan_id, "--judge", "rules", "--no-save"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert f"human labels in {stored.path}, run {stored.scan_id}" in done.stdout
    [all_row] = [line for line in done.stdout.splitlines() if "unsafe?" in line]
    assert re.search(r"\b\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", all_row), done.stdout
    assert f" {len(attempts)} " in all_row


def test_judge_eval_from_an_unlabelled_store_says_how_to_get_labels(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.sqlite"):
        pass
    done = subprocess.run(
        [str(SPARRING), "judge", "eval", "--from-store", "--store", str(tmp_path / "runs.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "holds no human labels yet" in done.stderr and "Traceback" not in done.stderr


def test_view_of_a_missing_store_fails_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(SPARRING), "view", "--store", str(tmp_path / "none.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --store {tmp_path / 'none.sqlite'}: no run store there; run a scan first or "
        "pass --store"
    ]
    assert not (tmp_path / "none.sqlite").exists()
