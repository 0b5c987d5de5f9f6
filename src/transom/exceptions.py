"""Exceptions users raise or catch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

__all__ = [
    "ClientDisconnect",
    "HTTPException",
    "ImproperlyConfigured",
    "RequestValidationError",
]


class ImproperlyConfigured(RuntimeError):
    """The application's configuration is wrong; raised at start-up, never per request."""


class ClientDisconnect(Exception):
    """The client went away before the request body was fully received."""


class HTTPException(Exception):
    """Stop handling the request and answer with ``status_code``.

    ``detail`` becomes the ``detail`` key of the JSON error body (or the text of the HTML error
    page); it must be safe to show to the client.
    """

    def __init__(
        self,
        status_code: int,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = HTTPStatus(status_code).phrase
            except ValueError:
                detail = "Error"
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"


class RequestValidationError(HTTPException):
    """Request data failed validation; answered with 422 and one entry per bad field."""

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(422, list(errors))
        self.errors = list(errors)
