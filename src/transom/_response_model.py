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

from transom.responses import Response

_SKIP = (dict, list, str, bytes, type(None))


def _involves_model(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    return any(_involves_model(arg) for arg in get_args(annotation))


def _involves_response(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, Response)
    return any(_involves_response(arg) for arg in get_args(annotation))


@dataclasses.dataclass(frozen=True, slots=True)
class Output:
    """A route's declared response type and its compiled adapter."""

    adapter: TypeAdapter[Any]
    #: The declared type itself: a result already of exactly this type is not validated again.
    model: Any


def output_adapter(endpoint: Callable[..., Any], response_model: Any) -> Output | None:
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
    return Output(TypeAdapter(model), model)


class ResponseValidationError(Exception):
    """The handler returned something its declared response model does not accept (a bug)."""


def render_output(output: Output, result: Any, status_code: int | None) -> Response:
    if result is None and status_code is not None:
        return Response(b"", status_code)
    adapter = output.adapter
    if type(result) is not output.model:
        if dataclasses.is_dataclass(result) and not isinstance(result, type):
            # Pydantic takes a dataclass instance as it is, so a generic one (``Page`` for a
            # declared ``Page[ItemOut]``) would keep its items unconverted: ItemOut's
            # validators would never run. Validate its fields instead (one level: the items
            # are converted by the declared type, with from_attributes for ORM objects).
            result = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
        try:
            result = adapter.validate_python(result, from_attributes=True)
        except ValidationError as exc:
            raise ResponseValidationError(str(exc)) from exc
    # By alias, like the OpenAPI document (serialization schemas use aliases): a camelCase
    # alias generator sends what /openapi.json promises.
    body = adapter.dump_json(result, by_alias=True)
    return Response(body, status_code or 200, media_type="application/json")
