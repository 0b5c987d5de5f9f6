"""Transom: an async-first web framework that grows from hello world to a full product."""

from typing import TYPE_CHECKING, Any

from transom._deprecation import renamed_names
from transom.app import App
from transom.datastructures import (
    URL,
    FormData,
    Headers,
    MutableHeaders,
    QueryParams,
    State,
    UploadFile,
)
from transom.exceptions import HTTPException, ImproperlyConfigured, RequestValidationError
from transom.files import FileResponse
from transom.params import Body, Cookie, Depends, File, FormParam, Header, Path, Query
from transom.requests import Request
from transom.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from transom.routing import Mount, Route, Router
from transom.settings import Settings
from transom.sse import EventSourceResponse
from transom.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from transom.templating import render

    # The parameter marker's old name, still accepted by type checkers while it is deprecated.
    Form = FormParam

__version__ = "0.1.0"

__all__ = [
    "URL",
    "App",
    "Body",
    "Cookie",
    "Depends",
    "EventSourceResponse",
    "File",
    "FileResponse",
    "FormData",
    "FormParam",
    "HTMLResponse",
    "HTTPException",
    "Header",
    "Headers",
    "ImproperlyConfigured",
    "JSONResponse",
    "Mount",
    "MutableHeaders",
    "Path",
    "PlainTextResponse",
    "Query",
    "QueryParams",
    "RedirectResponse",
    "Request",
    "RequestValidationError",
    "Response",
    "Route",
    "Router",
    "Settings",
    "State",
    "StreamingResponse",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
    "__version__",
    "render",
]


def _lazy(name: str) -> Any:
    # `from transom import render` without the core importing the templating battery
    # until someone asks for it.
    if name == "render":
        from transom.templating import render

        return render
    raise AttributeError(f"module 'transom' has no attribute {name!r}")


# `transom.Form` was the parameter marker; `transom.forms.Form` is the form class.
# Runtime only: a module __getattr__ seen by type checkers would make them accept any name.
if not TYPE_CHECKING:
    __getattr__ = renamed_names(
        __name__,
        globals(),
        {"Form": "FormParam"},
        hints={"Form": "transom.forms.Form is the form class"},
        fallback=_lazy,
    )
