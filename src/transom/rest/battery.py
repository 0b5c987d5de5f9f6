"""The REST battery: its settings, and the OpenAPI description of every included resource."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import TypeAdapter

from transom.batteries import Battery
from transom.rest.errors import ErrorFormat, error_schemas
from transom.routing import Route

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["EXTENSION_KEY", "Rest", "RestConfig"]

EXTENSION_KEY: Final = "transom.rest"
_REF = "#/components/schemas/{model}"


@dataclasses.dataclass
class RestConfig:
    """Settings shared by every resource of an app (a resource may override some).

    Attributes:
        error_format: ``"problem"``: RFC 9457 problem details (``application/problem+json``,
            field errors in ``errors``); ``"errors"``: ``{"errors": {"field": ["message"]}}``.
        unknown_fields: A request body field the resource doesn't accept (unknown or
            read-only): ``"forbid"`` answers 422, ``"ignore"`` drops it.
        default_limit: Items per list page when the client doesn't say.
        max_limit: The most items a client may ask for (``?limit=`` is capped at it).
    """

    error_format: ErrorFormat = "problem"
    unknown_fields: Literal["forbid", "ignore"] = "forbid"
    default_limit: int = 20
    max_limit: int = 100

    def __post_init__(self) -> None:
        if self.error_format not in ("problem", "errors"):
            raise ValueError("error_format must be 'problem' or 'errors'")
        if self.unknown_fields not in ("forbid", "ignore"):
            raise ValueError("unknown_fields must be 'forbid' or 'ignore'")
        if not 1 <= self.default_limit <= self.max_limit:
            raise ValueError("need 1 <= default_limit <= max_limit")


class Rest(Battery):
    """``app.install(Rest(RestConfig(...)))``; installed with its defaults by the first
    ``app.include(SomeResource)`` otherwise."""

    name = EXTENSION_KEY

    def __init__(self, config: RestConfig | None = None) -> None:
        super().__init__()
        self.config = config or RestConfig()

    def requirements(self) -> tuple[type[Battery], ...]:
        from transom.db import Database

        return (Database,)

    def setup(self, app: App) -> None:
        from transom.rest.links import resolve_links

        app.openapi_hook(self._openapi)
        # Links point at routes: resolved once every resource is included.
        app.add_check(lambda: resolve_links(app))

    def _openapi(self, document: dict[str, Any]) -> None:
        """Add what the generic handlers read by themselves: bodies, query and path
        parameters, and the error schema. Found by route, so a resource included twice
        (``/v1``, ``/v2``) is documented at both places."""
        inputs: list[tuple[int, Literal["validation"], TypeAdapter[Any]]] = []
        targets: list[dict[str, Any]] = []
        paths = document.get("paths", {})
        for route in self.app.iter_routes():
            doc = getattr(getattr(route, "endpoint", None), "__transom_rest_doc__", None)
            if doc is None or not isinstance(route, Route):
                continue
            template = "/" + "/".join(
                f"{{{s.param}}}" if s.param else s.text for s in route.segments
            )
            for method in route.methods:
                operation = paths.get(template, {}).get(method.lower())
                if operation is None:
                    continue  # left out of the schema
                if doc.parameters:
                    taken = {p["name"] for p in operation.get("parameters", [])}
                    extra = [p for p in doc.parameters if p["name"] not in taken]
                    operation["parameters"] = [*operation.get("parameters", []), *extra]
                if doc.body is not None:
                    media: dict[str, Any] = {}
                    operation["requestBody"] = {
                        "required": True,
                        "content": {"application/json": media},
                    }
                    inputs.append((len(inputs), "validation", TypeAdapter(doc.body)))
                    targets.append(media)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if inputs:
            found, definitions = TypeAdapter.json_schemas(inputs, ref_template=_REF)
            for (index, mode, _), media in zip(inputs, targets, strict=True):
                media["schema"] = found[(index, mode)]
            for name, schema in definitions.get("$defs", {}).items():
                schemas.setdefault(name, schema)
        name, _, schema = error_schemas(self.config.error_format)
        schemas.setdefault(name, schema)
