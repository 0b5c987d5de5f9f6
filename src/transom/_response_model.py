"""Declared response models: validate what a handler returns and serialize only declared fields.

A handler annotated ``-> UserOut`` (or given ``response_model=UserOut``) may return an ORM object
or a dict; it is converted to ``UserOut`` (attributes read as with ``from_attributes``), so
fields that are not declared, such as a password hash, never reach the client.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from .responses import Response

_SKIP = (dict, list, str, bytes, type(None))


def _involves_model(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    return any(_involves_model(arg) for arg in get_args(annotation))


def _involves_response(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, Response)
    return any(_involves_response(arg) for arg in get_args(annotation))


def output_adapter(endpoint: Callable[..., Any], response_model: Any) -> TypeAdapter[Any] | None:
    model = response_model
    if model is None:
        try:
            model = typing.get_type_hints(endpoint).get("return")
        except Exception:  # unresolvable return annotations only lose the output check
            return None
    if model is None or model in _SKIP or model is Any or get_origin(model) is tuple:
        return None
    if _involves_response(model) or not _involves_model(model):
        return None
    return TypeAdapter(model)


class ResponseValidationError(Exception):
    """The handler returned something its declared response model does not accept (a bug)."""


def render_output(adapter: TypeAdapter[Any], result: Any, status_code: int | None) -> Response:
    if result is None and status_code is not None:
        return Response(b"", status_code)
    core_type = getattr(adapter, "_type", None)
    if type(result) is not core_type:
        try:
            result = adapter.validate_python(result, from_attributes=True)
        except ValidationError as exc:
            raise ResponseValidationError(str(exc)) from exc
    body = adapter.dump_json(result)
    return Response(body, status_code or 200, media_type="application/json")
