"""The viewer's web application: routes, request parsing and server-side rendered pages.

Every page is complete HTML from the server, so reading works with JavaScript off; the one
local script only adds keyboard shortcuts and live refresh. Store work runs on the store's
thread (``StoreWorker``); templates render here, with autoescaping on for every value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined

from sparring.errors import ConfigError, SparringError, StoreError
from sparring.report import redact_text
from sparring.report.formatting import interval, pct, rate_cell
from sparring.store.browse import OUTCOMES, AttemptFilter
from sparring.store.labels import HUMAN_VERDICTS
from sparring.view.attempts import attempt_view, attempts_list
from sparring.view.guard import EXTRA_HOSTS_KEY, TOKEN_FIELD, TOKEN_KEY, guard, new_token
from sparring.view.reader import Reader, StoreWorker
from sparring.view.review import export_lines, judge_agreement, reviewed
from sparring.view.runs import compare_page, run_page, runs_list

LIVE_REFRESH_S = 5
"""Seconds between reloads of a live page when JavaScript is off (meta refresh)."""

SUMMARY_WAIT_S = 1.0
"""How long a run's page waits for its rates before it is shown without them, seconds (a
large run's are computed in the background, and the page fills in when they are ready)."""

_STATIC = {
    "view.css": ("sparring.view", "static/view.css", "text/css"),
    "view.js": ("sparring.view", "static/view.js", "text/javascript"),
    "scan.css": ("sparring.report", "templates/scan.css", "text/css"),
}
"""The files under /static/: the viewer's own, and the HTML report's stylesheet, whose chart
styles the viewer's pages share."""


@dataclass(frozen=True)
class Site:
    """What every handler needs: the store's worker, the templates and who is reviewing."""

    worker: StoreWorker
    env: Environment
    store_path: Path
    reviewer: str
    static: Mapping[str, tuple[bytes, str]]


SITE_KEY = web.AppKey("site", Site)


def make_app(
    worker: StoreWorker, store_path: Path, reviewer: str, extra_hosts: frozenset[str] = frozenset()
) -> web.Application:
    """The application over an open store; ``extra_hosts`` are host names it answers to
    besides its address (see ``sparring.view.guard``)."""
    env = Environment(
        loader=PackageLoader("sparring.view", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(pct=pct, interval=interval, rate_cell=rate_cell, outcomes=OUTCOMES)
    env.globals.update(verdicts=HUMAN_VERDICTS, list_url=list_url, redact=redact_text)
    env.globals.update(
        no_filter=AttemptFilter(),
        disagreeing=AttemptFilter(disagreement=True),
        by_technique=lambda name: AttemptFilter(technique=name),
        by_category=lambda name: AttemptFilter(category=name),
    )
    static = {
        name: ((resources.files(package) / path).read_bytes(), kind)
        for name, (package, path, kind) in _STATIC.items()
    }
    app = web.Application(middlewares=[guard, _errors])
    app[TOKEN_KEY] = new_token()
    app[EXTRA_HOSTS_KEY] = extra_hosts
    app[SITE_KEY] = Site(worker, env, store_path, reviewer, static)
    app.router.add_get("/", runs)
    app.router.add_get("/runs/{run}", run)
    app.router.add_get("/runs/{run}/attempts", attempts)
    app.router.add_get("/runs/{run}/attempts/{key}", attempt)
    app.router.add_post("/runs/{run}/attempts/{key}/label", label)
    app.router.add_get("/review", review)
    app.router.add_get("/compare", compare)
    app.router.add_get("/labels", labels)
    app.router.add_get("/labels.jsonl", export)
    app.router.add_get("/version", version)
    app.router.add_get("/static/{name}", static_file)
    return app


def list_url(run_id: str, flt: AttemptFilter, judge: str | None, page: int = 1) -> str:
    """The attempts list of a run under a filter, at a page."""
    query = {
        "technique": flt.technique,
        "category": flt.category,
        "verdict": flt.outcome,
        "disagree": "1" if flt.disagreement else None,
        "q": flt.text,
        "judge": judge,
        "page": str(page) if page > 1 else None,
    }
    shown = urlencode({k: v for k, v in query.items() if v})
    return f"/runs/{quote(run_id)}/attempts" + (f"?{shown}" if shown else "")


async def _render(
    request: web.Request, template: str, *, live: bool = False, status: int = 200, **context: Any
) -> web.Response:
    site = request.app[SITE_KEY]
    signature = await site.worker.call(lambda r: r.version())
    html = site.env.get_template(template).render(
        store=str(site.store_path),
        version=signature,
        live=live,
        refresh_s=LIVE_REFRESH_S,
        token=request.app[TOKEN_KEY],
        token_field=TOKEN_FIELD,
        reviewer=site.reviewer,
        **context,
    )
    return web.Response(text=html, content_type="text/html", status=status)


async def _call(request: web.Request, fn: Callable[[Reader], Any]) -> Any:
    return await request.app[SITE_KEY].worker.call(fn)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """A user's mistake (an unknown run, a bad filter) as a page saying what to do."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except StoreError as err:
        return await _render(request, "error.html", status=404, message=str(err))
    except SparringError as err:
        return await _render(request, "error.html", status=400, message=str(err))


def _text(request: web.Request, name: str) -> str | None:
    value = request.query.get(name, "").strip()
    return value or None


def _number(request: web.Request, name: str, minimum: int) -> int:
    """A whole-number query field (``minimum`` when absent); ConfigError below it."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return minimum
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{name}={raw!r} is not a whole number of at least {minimum}")
    return int(raw)


async def runs(request: web.Request) -> web.Response:
    lines = await _call(request, runs_list)
    live = any(line.run.state == "running" for line in lines)
    return await _render(request, "runs.html", live=live, lines=lines)


async def run(request: web.Request) -> web.Response:
    run_id = request.match_info["run"]
    await request.app[SITE_KEY].worker.summaries([run_id], SUMMARY_WAIT_S)
    page = await _call(request, lambda r: run_page(r, run_id))
    live = page.computing or page.line.run.state == "running"
    return await _render(request, "run.html", live=live, page=page)


async def attempts(request: web.Request) -> web.Response:
    run_id = request.match_info["run"]
    outcome = _text(request, "verdict")
    if outcome is not None and outcome not in OUTCOMES:
        raise ConfigError(f"verdict={outcome!r} is not one of {', '.join(OUTCOMES)}")
    flt = AttemptFilter(
        technique=_text(request, "technique"),
        category=_text(request, "category"),
        outcome=outcome,
        disagreement=request.query.get("disagree") == "1",
        text=_text(request, "q"),
    )
    judge, number = _text(request, "judge"), _number(request, "page", 1)
    listing = await _call(request, lambda r: attempts_list(r, run_id, flt, judge, number))
    live = listing.run.state == "running"
    return await _render(request, "attempts.html", live=live, listing=listing)


async def attempt(request: web.Request) -> web.Response:
    run_id, key = request.match_info["run"], request.match_info["key"]
    reveal = request.query.get("reveal") == "1"
    shown = await _call(request, lambda r: attempt_view(r, run_id, key, reveal))
    review_scope = request.query.get("scope", "") if request.query.get("review") == "1" else None
    return await _render(
        request,
        "attempt.html",
        view=shown,
        review_scope=review_scope,
        skip=_number(request, "skip", 0),
    )


async def label(request: web.Request) -> web.Response:
    run_id, key = request.match_info["run"], request.match_info["key"]
    form = await request.post()
    chosen, note = str(form.get("label", "")), str(form.get("note", "")).strip()
    reviewer = request.app[SITE_KEY].reviewer
    try:
        await _call(request, lambda r: r.store.add_label(run_id, key, chosen, note, reviewer))
    except StoreError as err:
        return await _render(request, "error.html", status=400, message=str(err))
    if form.get("review") == "1":
        query = {"scope": str(form.get("scope", "")), "skip": str(form.get("skip", "0"))}
        raise web.HTTPSeeOther(f"/review?{urlencode(query)}")
    reveal = "?reveal=1" if form.get("reveal") == "1" else ""
    raise web.HTTPSeeOther(f"/runs/{quote(run_id)}/attempts/{quote(key)}{reveal}")


async def review(request: web.Request) -> web.Response:
    scope, skip = _text(request, "scope"), _number(request, "skip", 0)
    if scope is not None:
        await _call(request, lambda r: r.store.get_run(scope))
    found = await _call(request, lambda r: r.store.review_queue(scope, skip, 1))
    if not found:
        return await _render(request, "review_done.html", scope=scope, skip=skip)
    run_id, key = found[0]
    query = urlencode({"review": "1", "scope": scope or "", "skip": str(skip)})
    raise web.HTTPSeeOther(f"/runs/{quote(run_id)}/attempts/{quote(key)}?{query}")


async def compare(request: web.Request) -> web.Response:
    run_a, run_b = _text(request, "a"), _text(request, "b")
    choices = await _call(request, lambda r: r.store.list_runs())
    page = None
    if run_a and run_b:
        await request.app[SITE_KEY].worker.summaries([run_a, run_b], SUMMARY_WAIT_S)
        page = await _call(request, lambda r: compare_page(r, run_a, run_b))
    live = page is not None and page.comparison is None
    return await _render(
        request, "compare.html", live=live, choices=choices, page=page, run_a=run_a, run_b=run_b
    )


async def labels(request: web.Request) -> web.Response:
    scope = _text(request, "run")

    def build(reader: Reader) -> dict[str, Any]:
        if scope is not None:
            reader.store.get_run(scope)
        items = reviewed(reader.store, scope)
        return {"items": items, "agreement": judge_agreement(items)}

    return await _render(request, "labels.html", scope=scope, **await _call(request, build))


async def export(request: web.Request) -> web.Response:
    scope = _text(request, "run")

    def build(reader: Reader) -> list[str]:
        if scope is not None:
            reader.store.get_run(scope)
        return list(export_lines(reviewed(reader.store, scope)))

    lines = await _call(request, build)
    name = f"sparring-labels-{scope or 'all'}.jsonl"
    return web.Response(
        text="".join(lines),
        content_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def version(request: web.Request) -> web.Response:
    signature = await _call(request, lambda r: r.version())
    return web.json_response({"version": signature})


async def static_file(request: web.Request) -> web.Response:
    found = request.app[SITE_KEY].static.get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    body, kind = found
    return web.Response(body=body, content_type=kind)
