"""Error responses: negotiated JSON/HTML bodies, the 500 page, and the debug traceback page."""

from __future__ import annotations

import difflib
import html
import linecache
import logging
import re
import traceback
import uuid
from typing import Any

from transom.exceptions import HTTPException, RequestValidationError
from transom.requests import Request
from transom.responses import HTMLResponse, JSONResponse, Response

logger = logging.getLogger("transom.error")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def wants_html(request: Request) -> bool:
    """True for browsers (which list text/html); APIs and curl get JSON."""
    accept = str(request.headers.get("accept", ""))
    return "text/html" in accept and "application/json" not in accept


def request_id(request: Request) -> str:
    """The request's id (:mod:`transom.logs`); without one (``request_id_header`` off), the
    client's ``X-Request-ID`` when it is sane, else a new random id."""
    given = request.scope.get("transom.request_id")
    if given:
        return str(given)
    supplied = request.headers.get("x-request-id")
    if supplied and _REQUEST_ID.fullmatch(supplied):
        return str(supplied)
    return uuid.uuid4().hex


def _nonce(request: Request) -> str:
    # A battery with a Content-Security-Policy puts a nonce function of the request in
    # app.extensions["transom.csp_nonce"] (or a getter in the scope); without it, the page's
    # inline style would be blocked.
    getter = request.scope.get("transom.csp_nonce")
    if callable(getter):
        return str(getter())
    app = request.app
    of_request = app.extensions.get("transom.csp_nonce") if app is not None else None
    return str(of_request(request)) if callable(of_request) else ""


#: The error pages' look: readable at any width (long names and code wrap, nothing is cut
#: or scrolls sideways on a phone), light and dark.
_STYLE = (
    "*{box-sizing:border-box}"
    "body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:0 auto;padding:2rem 1rem;"
    "color:#1f2328;background:#fff;overflow-wrap:anywhere}"
    "h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}h3{font-size:1rem;margin:1.5rem 0 .3rem}"
    "code,pre{font:13px/1.45 ui-monospace,monospace;background:#f3f4f6;border-radius:4px}"
    "code{padding:.05rem .3rem}pre{padding:.6rem .8rem;white-space:pre-wrap;"
    "overflow-wrap:anywhere;margin:0}"
    "table{width:100%;table-layout:fixed;border-collapse:collapse;font-size:13px}"
    "td{vertical-align:top;padding:.2rem .4rem;border-top:1px solid #e5e7eb}"
    "td:first-child{width:30%}.status{color:#6b7280;font-size:.95rem;margin:0}"
    ".home{display:inline-block;margin-top:1.5rem;padding:.45rem .9rem;border-radius:6px;"
    "background:#1f6feb;color:#fff;text-decoration:none}"
    "ul.routes{padding-left:1.2rem}"
    "@media (prefers-color-scheme:dark){body{color:#e6edf3;background:#0d1117}"
    "code,pre{background:#161b22}td{border-color:#30363d}}"
)


def home_url(request: Request) -> str:
    """The site's home page, under the app's mount point."""
    return str(request.scope.get("root_path") or "") + "/"


def _page(title: str, body: str, nonce: str = "", *, home: str | None = None) -> str:
    style = f"<style nonce='{html.escape(nonce)}'>" if nonce else "<style>"
    link = (
        f"<p><a class=home href='{html.escape(home)}'>Go to the home page</a></p>" if home else ""
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{title}</title>"
        f"{style}{_STYLE}</style></head>"
        f"<body><main><h1>{title}</h1>{body}{link}</main></body></html>"
    )


def _battery_page(request: Request, status: int, context: dict[str, Any]) -> Response | None:
    """A page a battery renders for ``status`` (the templates' ``404.html``), if any.

    A battery offers one with ``error_page(request, status, context) -> Response | None``;
    the core knows no battery by name.
    """
    app = request.app
    if app is None:
        return None
    for battery in app.batteries:
        render = getattr(battery, "error_page", None)
        if callable(render):
            try:
                page = render(request, status, context)
            except Exception:  # a broken template: the built-in page still answers
                logger.exception(
                    "The %d page of %r failed; the built-in page was sent", status, battery
                )
                return None
            if isinstance(page, Response):
                return page
    return None


async def resolved(request: Request, response: Response, fallback: Response) -> Response:
    """``response`` rendered (a template page), or ``fallback`` when rendering fails."""
    if not response.deferred:
        return response
    try:
        return await response.resolve(request)
    except Exception:
        logger.exception("The error page template failed; the built-in page was sent")
        return fallback


def http_error_response(request: Request, exc: HTTPException) -> Response:
    headers = exc.headers
    if wants_html(request):
        return _html_error(request, exc)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers)


def _html_error(request: Request, exc: HTTPException) -> Response:
    status, headers = exc.status_code, exc.headers
    title = html.escape(f"{status} {_phrase(status)}")
    debug = request.app is not None and request.app.settings.debug
    if isinstance(exc, RequestValidationError):
        items = "".join(
            f"<li><code>{html.escape('.'.join(map(str, e['loc'])))}</code>: "
            f"{html.escape(str(e['msg']))}</li>"
            for e in exc.errors
        )
        body = f"<ul>{items}</ul>"
    else:
        body = f"<p>{html.escape(str(exc.detail))}</p>"
    if debug and status == 404 and request.route is None:
        body += _near_routes(request)
    home = home_url(request)
    plain = HTMLResponse(_page(title, body, _nonce(request), home=home), status, headers)
    if debug:
        return plain
    context = {
        "status_code": status,
        "title": f"{status} {_phrase(status)}",
        "detail": exc.detail if status < 500 else _phrase(status),
        "home_url": home,
    }
    page = _battery_page(request, status, context)
    if page is None:
        return plain
    page.status_code = status
    for name, value in (headers or {}).items():
        page.headers[name] = value
    return _Deferred(page, plain)


def _near_routes(request: Request) -> str:
    """Debug 404: the routes whose path is closest to the one requested."""
    app = request.app
    if app is None:
        return ""
    wanted = request.path.strip("/").split("/")
    scored: list[tuple[float, str, str]] = []
    for route in app.iter_routes():
        path = str(getattr(route, "path", ""))
        if not path:
            continue
        parts = path.strip("/").split("/")
        shared = 0.0
        for mine, theirs in zip(wanted, parts, strict=False):
            if mine == theirs or (theirs.startswith("{") and theirs.endswith("}")):
                shared += 1
            elif difflib.SequenceMatcher(None, mine, theirs).ratio() >= 0.75:
                shared += 0.5  # a typo: "post" for "posts"
            else:
                break
        ratio = difflib.SequenceMatcher(None, request.path, path).ratio()
        score = shared + ratio
        if shared or ratio >= 0.6:
            methods = ",".join(getattr(route, "methods", ()) or ("*",))
            scored.append((score, methods, path))
    if not scored:
        return "<p>No route is close to this path.</p>"
    scored.sort(key=lambda item: -item[0])
    items = "".join(
        f"<li><code>{html.escape(methods)} {html.escape(path)}</code></li>"
        for _, methods, path in scored[:10]
    )
    return f"<h3>Routes that nearly match</h3><ul class=routes>{items}</ul>"


class _Deferred(Response):
    """A battery's error page, rendered by the app, with the built-in page as its fallback."""

    deferred = True
    __slots__ = ("fallback", "page")

    def __init__(self, page: Response, fallback: Response) -> None:
        super().__init__(b"", page.status_code)
        self.page = page
        self.fallback = fallback

    async def resolve(self, request: Request) -> Response:
        return await resolved(request, self.page, self.fallback)


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def server_error_response(request: Request, exc: BaseException, debug: bool) -> Response:
    """Log the traceback with a request id; answer without internals unless in debug mode."""
    rid = request_id(request)
    logger.error(
        "Unhandled %s in %s %s [request id %s]",
        type(exc).__name__,
        request.method,
        request.path,
        rid,
        exc_info=exc,
    )
    headers = {"X-Request-ID": rid}
    if debug:
        if wants_html(request):
            return HTMLResponse(debug_page(request, exc, rid), 500, headers)
        return JSONResponse(
            {
                "detail": "Internal Server Error",
                "request_id": rid,
                "exception": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exception(exc),
            },
            500,
            headers,
        )
    if wants_html(request):
        body = (
            "<p>Something went wrong on our side. The error has been logged.</p>"
            f"<p>Request id: <code>{rid}</code></p>"
        )
        home = home_url(request)
        page = _page("500 Internal Server Error", body, _nonce(request), home=home)
        plain = HTMLResponse(page, 500, headers)
        context = {
            "status_code": 500,
            "title": "500 Internal Server Error",
            "detail": "Something went wrong on our side. The error has been logged.",
            "request_id": rid,
            "home_url": home,
        }
        custom = _battery_page(request, 500, context)
        if custom is None:
            return plain
        custom.status_code = 500
        custom.headers["X-Request-ID"] = rid
        return _Deferred(custom, plain)
    return JSONResponse({"detail": "Internal Server Error", "request_id": rid}, 500, headers)


def debug_page(request: Request, exc: BaseException, rid: str) -> str:
    """A traceback page with source context and locals, every value escaped."""
    frames: list[str] = []
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        code = frame.f_code
        lines = []
        for n in range(max(lineno - 3, 1), lineno + 3):
            text = linecache.getline(code.co_filename, n, frame.f_globals)
            if text:
                mark = "&gt;" if n == lineno else "&nbsp;"
                lines.append(f"{mark}{n:5d}  {html.escape(text.rstrip())}")
        local_rows = "".join(
            f"<tr><td><code>{html.escape(name)}</code></td><td><code>{html.escape(_safe_repr(value))}"
            "</code></td></tr>"
            for name, value in list(frame.f_locals.items())[:40]
        )
        frames.append(
            f"<h3><code>{html.escape(code.co_filename)}:{lineno}</code> in "
            f"<code>{html.escape(code.co_name)}</code></h3><pre>{'<br>'.join(lines)}</pre>"
            f"<details><summary>locals</summary><table>{local_rows}</table></details>"
        )
    title = html.escape(f"{type(exc).__name__}: {exc}")
    body = (
        f"<p><b>{html.escape(request.method)} {html.escape(request.path)}</b> — request id "
        f"<code>{rid}</code>. Debug mode is on: never enable it in production.</p>"
        + "".join(frames)
    )
    return _page(title, body, _nonce(request))


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the error page
        text = f"<unrepresentable: {type(exc).__name__}>"
    return text if len(text) < 500 else text[:500] + "…"
