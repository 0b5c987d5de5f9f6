"""Transom: an async-first web framework that grows from hello world to a full product."""

from typing import TYPE_CHECKING, Any

from .app import App
from .datastructures import URL, FormData, Headers, MutableHeaders, QueryParams, State, UploadFile
from .exceptions import HTTPException, ImproperlyConfigured, RequestValidationError
from .files import FileResponse
from .params import Body, Cookie, Depends, File, Form, Header, Path, Query
from .requests import Request
from .responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from .routing import Mount, Route, Router
from .settings import Settings

if TYPE_CHECKING:
    from .templating import render

__version__ = "0.1.0"

__all__ = [
    "URL",
    "App",
    "Body",
    "Cookie",
    "Depends",
    "File",
    "FileResponse",
    "Form",
    "FormData",
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
    "__version__",
    "render",
]


def __getattr__(name: str) -> Any:
    # `from transom import render` without the core importing the templating battery
    # until someone asks for it.
    if name == "render":
        from .templating import render

        return render
    raise AttributeError(f"module 'transom' has no attribute {name!r}")
