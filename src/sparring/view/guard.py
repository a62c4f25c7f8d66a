"""The viewer's defences: it serves a store of harmful text and hostile model output to a
browser that also visits other sites.

- **DNS rebinding**: a page on another site can point its own host name at 127.0.0.1 and
  read the viewer as same-origin. Every request whose ``Host`` is not the address the
  connection came in on (or ``localhost`` on a loopback address) is refused with 403, and
  so is any request whose ``Origin`` is another site.
- **Cross-site forms**: a POST must come from the viewer's own pages: same-origin
  ``Origin`` when the browser sends one, and always the server's random token, which only
  its own pages carry.
- **Script in model output**: templates escape every text, and the Content-Security-Policy
  allows scripts from the viewer's own files only, so even a missed escape could not run
  an inline script or handler.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

TOKEN_FIELD = "_token"
"""The form field that carries the server's token on every POST."""

TOKEN_KEY = web.AppKey("token", str)
"""Where the app keeps its token."""

EXTRA_HOSTS_KEY: web.AppKey[frozenset[str]] = web.AppKey("extra_hosts")
"""Host names (besides the address itself) the app answers to, e.g. the machine's name."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not no-referrer: under it browsers send "Origin: null" on form posts.
    "Referrer-Policy": "same-origin",
    # Pages hold harmful text: keep them out of the browser's disk cache.
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    """A fresh random token for one server's forms."""
    return secrets.token_urlsafe(24)


def own_hosts(request: web.Request) -> set[str]:
    """The ``Host`` values that name this server on the connection's local address."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        return set()
    address, port = str(sockname[0]), int(sockname[1])
    ip = ipaddress.ip_address(address.split("%")[0])
    names = {f"[{address}]" if ip.version == 6 else address}
    if ip.is_loopback:
        names.add("localhost")
    extra: frozenset[str] = request.app[EXTRA_HOSTS_KEY]
    names.update(extra)
    hosts = {f"{name}:{port}".lower() for name in names}
    if port == 80:
        hosts |= {name.lower() for name in names}
    return hosts


def _refuse(why: str) -> web.Response:
    return web.Response(status=403, text=f"403 forbidden: {why}\n", headers=SECURITY_HEADERS)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse foreign Host and Origin headers and untokened POSTs; add security headers."""
    host = request.headers.get("Host", "").lower()
    if host not in own_hosts(request):
        return _refuse("this viewer answers only to its own address (Host header refused)")
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != f"http://{host}":
        return _refuse("request from another site (Origin header refused)")
    if request.method not in ("GET", "HEAD"):
        form = await request.post()
        token = form.get(TOKEN_FIELD)
        if not isinstance(token, str) or not hmac.compare_digest(token, request.app[TOKEN_KEY]):
            return _refuse("form without this server's token; reload the page and try again")
    try:
        response = await handler(request)
    except web.HTTPException as answer:  # redirects and plain errors
        answer.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response
