"""Markers that say where a handler parameter comes from, and dependency injection.

Use them in ``Annotated`` (preferred) or as the default value::

    async def search(
        q: Annotated[str, Query(min_length=2)],
        page: Annotated[int, Query(ge=1)] = 1,
        agent: Annotated[str | None, Header()] = None,
    ): ...

Without a marker, Transom infers the source: a name in the path template is a path parameter,
a Pydantic model or dataclass is the JSON body, ``UploadFile`` is a file, ``Request`` is the
request, and anything else is a query parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from transom._deprecation import renamed_names

__all__ = ["Body", "Cookie", "Depends", "File", "FormParam", "Header", "Param", "Path", "Query"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class Param:
    """Base of the source markers. Validation keywords (``ge``, ``max_length``, ``pattern``...)
    are Pydantic ``Field`` constraints."""

    location: ClassVar[str] = "query"

    def __init__(
        self,
        default: Any = REQUIRED,
        *,
        alias: str | None = None,
        description: str | None = None,
        examples: list[Any] | None = None,
        deprecated: bool = False,
        include_in_schema: bool = True,
        **constraints: Any,
    ) -> None:
        self.default = default
        self.alias = alias
        self.description = description
        self.examples = examples
        self.deprecated = deprecated
        self.include_in_schema = include_in_schema
        self.constraints = constraints

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alias={self.alias!r})"


class Query(Param):
    """A query-string parameter (``list[...]`` collects repeated keys)."""

    location = "query"


class Path(Param):
    """A path parameter (the name must appear in the route template)."""

    location = "path"


class Header(Param):
    """A request header; ``user_agent`` reads ``User-Agent`` (``convert_underscores=False``
    turns that off)."""

    location = "header"

    def __init__(self, default: Any = REQUIRED, *, convert_underscores: bool = True, **kw: Any):
        super().__init__(default, **kw)
        self.convert_underscores = convert_underscores


class Cookie(Param):
    """A request cookie."""

    location = "cookie"


class Body(Param):
    """The JSON body, or with ``embed=True`` one key of a JSON object body."""

    location = "body"

    def __init__(self, default: Any = REQUIRED, *, embed: bool = False, **kw: Any) -> None:
        super().__init__(default, **kw)
        self.embed = embed


class FormParam(Param):
    """A field of an urlencoded or multipart form (a Pydantic model takes the whole form).

    Named ``FormParam`` rather than ``Form`` (FastAPI's name) because ``transom.forms.Form`` is
    the form *class* (Django's name for it); ``transom.Form`` is its deprecated old name.
    """

    location = "form"


class File(Param):
    """An uploaded file of a multipart form (``UploadFile``, ``bytes`` or a list of them)."""

    location = "file"


class Depends:
    """Inject the result of calling ``dependency`` (its own parameters are injected too).

    A generator dependency (sync or async) is cleaned up after the handler returns and before
    the response is sent; the handler's exception, if any, is raised at its ``yield``. With
    ``use_cache`` (the default) a dependency runs once per request however many ask for it.
    """

    __slots__ = ("dependency", "use_cache")

    def __init__(self, dependency: Callable[..., Any] | None = None, *, use_cache: bool = True):
        self.dependency = dependency
        self.use_cache = use_cache

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__qualname__", repr(self.dependency))
        return f"Depends({name})"


if TYPE_CHECKING:
    # Type checkers still accept the old name during its deprecation release.
    Form = FormParam

# Runtime only: a module __getattr__ seen by type checkers would make them accept any name.
if not TYPE_CHECKING:
    __getattr__ = renamed_names(__name__, globals(), {"Form": "FormParam"})
