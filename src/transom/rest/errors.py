"""Errors of REST resources in one shape: RFC 9457 problem details, or ``{"errors": {...}}``.

Every error a resource answers (404, 401/403, 409, 412, 422, 503...) goes through
:func:`problem_response`, so clients parse one format; ``RestConfig(error_format="errors")``
switches to the simple ``{"errors": {"field": ["message"]}}`` shape many clients expect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Literal

from transom.exceptions import HTTPException
from transom.responses import JSONResponse, Response, json_dumps

__all__ = ["ErrorFormat", "Problem", "error_schemas", "problem_response"]

ErrorFormat = Literal["problem", "errors"]
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error answer of a resource: raise it from hooks, actions and permissions.

    Args:
        status: The HTTP status.
        detail: A human-readable explanation of this occurrence.
        errors: Field errors, each ``{"loc": [...], "msg": ..., "type": ...}`` (the shape of
            request validation errors); ``loc`` ends with the field name.
        headers: Extra response headers (``Retry-After``, ``WWW-Authenticate``...).
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or _phrase(status))
        self.status = status
        self.detail = detail or _phrase(status)
        self.errors = [dict(e) for e in errors]
        self.headers = dict(headers or {})

    @classmethod
    def from_http(cls, exc: HTTPException) -> Problem:
        """The problem for an :class:`HTTPException` (its list detail becomes field errors)."""
        detail = exc.detail
        if isinstance(detail, list):
            return cls(exc.status_code, errors=detail, headers=exc.headers)
        return cls(exc.status_code, str(detail) if detail else None, headers=exc.headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field(loc: Sequence[Any]) -> str:
    # ("body", "title") -> "title"; ("query", "limit") -> "limit"; nested keep their path.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def problem_response(problem: Problem, error_format: ErrorFormat) -> Response:
    """Render ``problem`` in the configured shape."""
    if error_format == "errors":
        fields: dict[str, list[str]] = {}
        for error in problem.errors:
            fields.setdefault(_field(error.get("loc", ())), []).append(str(error.get("msg", "")))
        if not fields:
            fields["body"] = [problem.detail]
        return JSONResponse({"errors": fields}, problem.status, problem.headers)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _phrase(problem.status),
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = [
            {
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in problem.errors
        ]
    return Response(json_dumps(body), problem.status, problem.headers, PROBLEM_MEDIA_TYPE)


_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; field errors in `errors`.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
_ERRORS_SCHEMA: dict[str, Any] = {
    "title": "FieldErrors",
    "description": "Messages by field name.",
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }
    },
}


def error_schemas(error_format: ErrorFormat) -> tuple[str, str, dict[str, Any]]:
    """``(schema name, media type, JSON schema)`` of error bodies, for the OpenAPI document."""
    if error_format == "errors":
        return "FieldErrors", "application/json", _ERRORS_SCHEMA
    return "Problem", PROBLEM_MEDIA_TYPE, _PROBLEM_SCHEMA
