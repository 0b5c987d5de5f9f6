"""Relations sent as links: the path of the related object's retrieve route.

``links = ["author", "labels"]`` on a resource sends ``"author": "/api/users/3"`` and
``"labels": ["/api/labels/1", ...]``. The related resource is found by model among the
resources the app serves, when the app is built (the related resource may be included after
the one linking to it); a relation no resource serves, or several resources at once, is an
:class:`~transom.exceptions.ImproperlyConfigured` error then, not a broken link later.

A link costs no query of its own: it is built from the foreign key when the related resource
is looked up by its primary key, and from a joined column (the same join as a nested
relation) when it is looked up by another field (a slug).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from pydantic import WithJsonSchema

from transom.exceptions import ImproperlyConfigured
from transom.routing import Route

if TYPE_CHECKING:
    from transom.rest.resource import ModelResource
    from transom.rest.schemas import FieldSpec

__all__ = ["Link", "LinkURL", "resolve_links"]

#: The type of a link in a read schema: documented as ``{"type": "string", "format":
#: "uri-reference"}`` (an absolute path, relative to the server).
LinkURL = Annotated[str, WithJsonSchema({"type": "string", "format": "uri-reference"})]


@dataclasses.dataclass(eq=False)
class Link:
    """One relation sent as a link; :attr:`base` and :attr:`lookup` are filled in when the
    app is built (:func:`resolve_links`)."""

    field: str
    #: The related model.
    target: type[Any]
    #: The resource class named in ``links = {"author": Users}``, else ``None`` (any
    #: resource serving :attr:`target`).
    resource: type[ModelResource] | None
    #: The related model's primary-key attribute.
    target_pk: str
    #: The path of the related resource's retrieve route up to its last segment
    #: (``"/v2/api/users/"``).
    base: str | None = None
    #: The field the related resource looks its objects up by (``None``: its primary key).
    lookup: FieldSpec | None = None

    @property
    def key(self) -> str:
        """The related object's attribute that goes into the URL."""
        return self.lookup.attr if self.lookup is not None else self.target_pk

    @property
    def by_pk(self) -> bool:
        """The URL holds the related primary key: the foreign key is enough, no join."""
        return self.key == self.target_pk

    def url(self, value: Any) -> str | None:
        """The link to the related object whose lookup value is ``value`` (``None``: none)."""
        if value is None:
            return None
        base = self.base
        if base is None:
            raise ImproperlyConfigured(
                f"the link {self.field!r} is not resolved yet: the app builds it (app.build(), "
                "a server or the test client) before serving"
            )
        if type(value) is int:  # most keys: nothing to quote, and quote() is the cost here
            return base + str(value)
        return base + quote(str(value), safe="")


def _rest_routes(app: Any) -> Iterator[tuple[Route, ModelResource, str, str]]:
    """The routes of the resources ``app`` serves: (route, resource, operation, prefix the
    resource was included under)."""
    for route in app.iter_routes():
        info = getattr(getattr(route, "endpoint", None), "__transom_rest_route__", None)
        if info is None or not isinstance(route, Route):
            continue
        resource, operation, local = info
        prefix = route.path[: len(route.path) - len(local)] if route.path.endswith(local) else ""
        yield route, resource, operation, prefix


def resolve_links(app: Any) -> None:
    """Point every link of every resource ``app`` serves at its retrieve route (a check run
    when the app is built).

    Raises:
        ImproperlyConfigured: no resource serves the related model with a retrieve route,
            or several do under the same prefix (name one: ``links = {"author": Users}``).
    """
    retrieves: list[tuple[Route, ModelResource, str]] = []
    linking: dict[int, tuple[ModelResource, str]] = {}
    for route, resource, operation, prefix in _rest_routes(app):
        if operation == "retrieve":
            retrieves.append((route, resource, prefix))
        compiled = resource.compiled
        if compiled is not None and compiled.links and id(resource) not in linking:
            linking[id(resource)] = (resource, prefix)
    for resource, prefix in linking.values():
        compiled = resource.compiled
        assert compiled is not None
        for link in compiled.links.values():
            route, target = _choose(type(resource), link, prefix, retrieves)
            segments = route.segments
            if not segments or segments[-1].param is None:  # pragma: no cover - built by us
                raise ImproperlyConfigured(f"{route.path} does not end with the object's key")
            link.base = "/" + "".join(s.text + "/" for s in segments[:-1])
            target_compiled = target.compiled
            assert target_compiled is not None
            lookup = target_compiled.lookup
            link.lookup = lookup if lookup.attr != link.target_pk else None
        compiled.build_reads()


def _choose(
    cls: type[ModelResource],
    link: Link,
    prefix: str,
    retrieves: list[tuple[Route, ModelResource, str]],
) -> tuple[Route, ModelResource]:
    found = [
        (route, resource, at)
        for route, resource, at in retrieves
        if type(resource).model is link.target
        and (link.resource is None or isinstance(resource, link.resource))
    ]
    where = f"{cls.__name__}.links[{link.field!r}]"
    if not found:
        served = f"{link.resource.__name__} " if link.resource is not None else ""
        raise ImproperlyConfigured(
            f"{where}: no resource {served}serving {link.target.__name__} with a retrieve "
            f"route is included in the app: include one (app.include(...)), or send the "
            "relation as an id or nested"
        )
    if len(found) > 1:
        # A versioned API links within its version: /v1 resources to /v1 resources.
        same = [item for item in found if item[2] == prefix]
        found = same or found
    if len(found) > 1:
        paths = ", ".join(route.path for route, _, _ in found)
        raise ImproperlyConfigured(
            f"{where}: several resources serve {link.target.__name__} ({paths}): name the one "
            f'to link to: links = {{"{link.field}": TheResource}}'
        )
    route, resource, _ = found[0]
    return route, resource
