"""Error responses: negotiated JSON/HTML bodies, the 500 page, and the debug traceback page."""

from __future__ import annotations

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
    """The client's ``X-Request-ID`` when it is sane, else a new random id."""
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


def _page(title: str, body: str, nonce: str = "") -> str:
    style = f"<style nonce='{html.escape(nonce)}'>" if nonce else "<style>"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{title}</title>"
        f"{style}body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;"
        "padding:0 1rem;color:#222}h1{font-size:1.6rem}code,pre{background:#f4f4f4;"
        "padding:.1rem .3rem;border-radius:3px}pre{padding:.8rem;overflow:auto}</style></head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def http_error_response(request: Request, exc: HTTPException) -> Response:
    headers = exc.headers
    if wants_html(request):
        title = html.escape(f"{exc.status_code} {_phrase(exc.status_code)}")
        if isinstance(exc, RequestValidationError):
            items = "".join(
                f"<li><code>{html.escape('.'.join(map(str, e['loc'])))}</code>: "
                f"{html.escape(str(e['msg']))}</li>"
                for e in exc.errors
            )
            body = f"<ul>{items}</ul>"
        else:
            body = f"<p>{html.escape(str(exc.detail))}</p>"
        return HTMLResponse(_page(title, body, _nonce(request)), exc.status_code, headers)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers)


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
        return HTMLResponse(_page("500 Internal Server Error", body, _nonce(request)), 500, headers)
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
