"""``ModelAdmin``: how one model looks and behaves in the admin.

Every option has a default that works, so ``admin.register(Article)`` alone gives a list with
every column, a search box when the model has text columns, and an edit form with a widget per
column. Override class attributes to customise, and methods for behaviour.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, String, Text, cast, false, func, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import selectinload

from transom.admin.auth import ACTIONS
from transom.admin.forms import AdminField, AdminForm, build_fields, label_for
from transom.db.errors import is_unstorable_value
from transom.requests import Request

if TYPE_CHECKING:
    from transom.admin.site import Admin
    from transom.db import DbSession
    from transom.responses import Response

__all__ = ["ModelAdmin", "action", "object_label"]

F = TypeVar("F", bound=Callable[..., Any])
ActionFunc = Callable[..., Awaitable[Any]]
# Word boundaries in a class name, acronyms included: "APIToken" -> "API Token" (as its table
# name api_token and Django's verbose name "api token"), not "Apitoken".
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def action(*, description: str | None = None, permission: str = "change") -> Callable[[F], F]:
    """Mark a function as a bulk action of the list page.

    The function is called as ``await func(model_admin, request, db, objects)`` with the
    selected objects, inside the request's transaction. It may return a response (a page or a
    redirect), a string (shown as a message) or ``None``.

    Args:
        description: The label in the action menu (default: the function name, humanised).
        permission: The model permission the user needs: ``view``, ``add``, ``change`` or
            ``delete``.

    Example:
        >>> @action(description="Mark as published")
        ... async def publish(admin, request, db, objects):
        ...     for obj in objects:
        ...         obj.published = True
        ...     return f"{len(objects)} published."
    """
    if permission not in ACTIONS:
        raise ValueError(f"permission must be one of {ACTIONS}, not {permission!r}")

    def decorate(func: F) -> F:
        func.__transom_admin_action__ = {  # type: ignore[attr-defined]
            "description": description or func.__name__.replace("_", " ").capitalize(),
            "permission": permission,
        }
        return func

    return decorate


def object_label(obj: Any) -> str:
    """How an object is named in the admin: its ``__str__`` when the model defines one."""
    cls = type(obj)
    for klass in cls.__mro__:
        if "__str__" in vars(klass):
            if klass is object:
                break
            return str(obj)
    state = sa_inspect(obj)
    keys = [state.mapper.get_property_by_column(c).key for c in state.mapper.primary_key]
    values = [state.dict.get(k) for k in keys]  # never a lazy load
    pk = ",".join(str(v) for v in values) if any(v is not None for v in values) else "(new)"
    return f"{_humanise(cls.__name__)} {pk}"


def _humanise(name: str) -> str:
    return _CAMEL.sub(" ", name).lower().capitalize()


class ModelAdmin:
    """Options for one model in the admin. Subclass and register it with the model.

    Attributes:
        list_display: Columns of the list page: attribute names, many-to-one relationship
            names, method names of this class, or callables ``(obj) -> value``.
            Default: every column.
        list_display_links: Which of them link to the edit page (default: the first).
        search_fields: Attributes the search box looks in (case-insensitive "contains";
            prefix a name with ``^`` for "starts with", ``=`` for "equals"). Default: the
            model's text columns.
        list_filter: Sidebar filters: field names (booleans, enums/choices, dates, foreign
            keys) or :class:`~transom.admin.filters.ListFilter` classes.
        ordering: Default order, e.g. ``["-created_at"]`` (default: newest primary key first).
        list_per_page: Rows per page.
        fields: Fields of the edit form, in order (default: every column and many-to-many).
        exclude: Fields left out of the form.
        readonly_fields: Fields shown but never edited.
        schema: A Pydantic model the edit form's values must pass (default: the model's
            ``__schema__``, the schema its API takes), so the admin saves nothing the app
            refuses. See :mod:`transom.admin.validation`.
        actions: Extra bulk actions (functions decorated with :func:`action`).
        search_probe: Matching keys a search collects at once (see :mod:`.listing`).
        count_threshold: Above this many rows (estimated from the database's statistics)
            the list shows an estimate instead of running ``COUNT(*)`` on every page load.
        fk_select_limit: Related tables up to this size get a plain ``<select>``; larger ones
            a searchable box that loads matches on demand.
        app_label: The group on the dashboard (default: the model's ``__app_label__`` or its
            top-level package).
        verbose_name: Singular name (default: from the class name).
        verbose_name_plural: Plural name.
    """

    list_display: ClassVar[Sequence[Any] | None] = None
    list_display_links: ClassVar[Sequence[str] | None] = None
    search_fields: ClassVar[Sequence[str] | None] = None
    list_filter: ClassVar[Sequence[Any]] = ()
    ordering: ClassVar[Sequence[str] | None] = None
    list_per_page: ClassVar[int] = 50
    fields: ClassVar[Sequence[str] | None] = None
    exclude: ClassVar[Sequence[str]] = ()
    readonly_fields: ClassVar[Sequence[str]] = ()
    schema: ClassVar[type[BaseModel] | None] = None
    actions: ClassVar[Sequence[ActionFunc]] = ()
    count_threshold: ClassVar[int] = 50_000
    #: A filtered list first collects up to this many matching keys in one scan; when that is
    #: all of them, the page and the exact count come from them without a second scan.
    search_probe: ClassVar[int] = 1000
    fk_select_limit: ClassVar[int] = 100
    app_label: ClassVar[str | None] = None
    verbose_name: ClassVar[str | None] = None
    verbose_name_plural: ClassVar[str | None] = None
    #: Attribute holding a password hash: never shown; set through the password form.
    password_field: ClassVar[str | None] = None

    def __init__(self, model: type[Any], site: Admin) -> None:
        self.model = model
        self.site = site
        self.mapper = sa_inspect(model)
        self.model_name = model.__name__.lower()
        if self.app_label is None:
            self.app_label = _app_label(model)  # type: ignore[misc]
        self.name = self.verbose_name or _humanise(model.__name__)
        self.name_plural = self.verbose_name_plural or _pluralise(self.name)
        self.pk_columns = list(self.mapper.primary_key)
        self.pk_attr = self.mapper.get_property_by_column(self.pk_columns[0]).key

    # -- identity --------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """``"app_label.model_name"``: how history and permissions name this model."""
        return f"{self.app_label}.{self.model_name}"

    def url(self, view: str = "list", pk: Any = None, **query: Any) -> str:
        """The admin URL of a view of this model (``list``, ``add``, ``change``, ...)."""
        return self.site.model_url(self, view, pk, **query)

    def pk_of(self, obj: Any) -> str:
        """The primary key of ``obj`` as URL text (comma-separated when composite)."""
        return ",".join(
            str(getattr(obj, self.mapper.get_property_by_column(c).key)) for c in self.pk_columns
        )

    def parse_pk(self, text: str) -> Any:
        """The primary key value(s) for ``text`` from a URL.

        Raises:
            ValueError: the text cannot be a primary key of this model.
        """
        parts = text.split(",")
        if len(parts) != len(self.pk_columns):
            raise ValueError(text)
        values = []
        for column, part in zip(self.pk_columns, parts, strict=True):
            try:
                kind = column.type.python_type
            except NotImplementedError:
                kind = str
            values.append(kind(part))
        return values[0] if len(values) == 1 else tuple(values)

    def label(self, obj: Any) -> str:
        """How one object is named (override to change it)."""
        return object_label(obj)

    # -- permissions ----------------------------------------------------------------------------
    async def has_permission(self, request: Request, db: DbSession, user: Any, action: str) -> bool:
        """Whether ``user`` may ``action`` (view/add/change/delete) objects of this model."""
        backend = self.site.auth
        assert backend is not None
        codename = backend.codename(str(self.app_label), self.model_name, action)
        if await backend.has_perm(request, db, user, codename):
            return True
        if action == "view":
            # Who may change may also look.
            change = backend.codename(str(self.app_label), self.model_name, "change")
            return await backend.has_perm(request, db, user, change)
        return False

    async def permissions(self, request: Request, db: DbSession, user: Any) -> dict[str, bool]:
        """All four permissions of ``user`` on this model."""
        return {a: await self.has_permission(request, db, user, a) for a in ACTIONS}

    # -- list page -------------------------------------------------------------------------------
    def get_queryset(self, request: Request) -> Select[Any]:
        """The statement every list and lookup starts from (override to scope rows)."""
        return select(self.model)

    def display_columns(self) -> list[Any]:
        """The ``list_display`` entries (every column attribute by default)."""
        if self.list_display is not None:
            return list(self.list_display)
        hidden = {self.password_field} if self.password_field else set()
        columns = []
        for prop in self.mapper.column_attrs:
            column = prop.columns[0]
            if prop.key in hidden or isinstance(column.type, Text):
                continue
            columns.append(prop.key)
        return columns

    def column_title(self, entry: Any) -> str:
        """The header of a list column."""
        if callable(entry):
            return str(getattr(entry, "short_description", None) or label_for(entry.__name__))
        method = getattr(self, entry, None) if isinstance(entry, str) else None
        if method is not None and callable(method) and not hasattr(self.model, entry):
            return str(getattr(method, "short_description", None) or label_for(entry))
        return label_for(str(entry))

    def sort_key(self, entry: Any) -> str | None:
        """The column a list column sorts by, or ``None`` when it can't be sorted."""
        if not isinstance(entry, str):
            return None
        attr = getattr(self.model, entry, None)
        prop = getattr(attr, "property", None)
        if prop is not None and hasattr(prop, "columns"):
            return entry
        if prop is not None and getattr(prop, "direction", None) is not None:
            local = list(prop.local_columns)
            if len(local) == 1 and prop.direction.name == "MANYTOONE":
                return str(self.mapper.get_property_by_column(local[0]).key)
        return None

    def list_options(self) -> list[Any]:
        """Loader options for the relationships the list page shows."""
        options = []
        for entry in self.display_columns():
            if isinstance(entry, str):
                attr = getattr(self.model, entry, None)
                prop = getattr(attr, "property", None)
                if prop is not None and getattr(prop, "direction", None) is not None:
                    options.append(selectinload(attr))  # type: ignore[arg-type]
        return options

    def cell(self, obj: Any, entry: Any) -> Any:
        """The value of one list cell."""
        if callable(entry):
            return entry(obj)
        if isinstance(entry, str) and not hasattr(self.model, entry):
            method = getattr(self, entry, None)
            if callable(method):
                return method(obj)
        value = getattr(obj, entry, None)
        if hasattr(value, "__table__"):
            return object_label(value)
        return value

    def search_columns(self) -> list[str]:
        """``search_fields``, or the model's text columns by default."""
        if self.search_fields is not None:
            return list(self.search_fields)
        names = []
        for prop in self.mapper.column_attrs:
            column = prop.columns[0]
            if prop.key == self.password_field or column.foreign_keys:
                continue
            if isinstance(column.type, String) and not isinstance(column.type, Text):
                names.append(prop.key)
        return names[:4]

    def apply_search(self, stmt: Select[Any], query: str) -> Select[Any]:
        """Narrow ``stmt`` to rows where every word of ``query`` matches some search field.

        A field may go through relationships: ``"author__name"`` looks in the related
        author's name (an ``EXISTS`` subquery, on every engine).
        """
        names = self.search_columns()
        if not names or not query.strip():
            return stmt
        for term in query.split()[:10]:
            alternatives = []
            for name in names:
                mode, field = ("contains", name)
                if name[:1] in "^=":
                    mode, field = ("starts" if name[0] == "^" else "exact"), name[1:]
                condition = _match(self.model, field.split("__"), mode, term)
                if condition is not None:
                    alternatives.append(condition)
            stmt = stmt.where(or_(*alternatives) if alternatives else false())
        return stmt

    def get_actions(self) -> dict[str, tuple[ActionFunc | None, str, str]]:
        """Bulk actions by name: ``(function, description, permission)``."""
        found: dict[str, tuple[ActionFunc | None, str, str]] = {
            "delete_selected": (None, f"Delete selected {self.name_plural.lower()}", "delete")
        }
        for handler in self.actions:
            meta = getattr(handler, "__transom_admin_action__", None) or {
                "description": handler.__name__.replace("_", " ").capitalize(),
                "permission": "change",
            }
            found[handler.__name__] = (handler, meta["description"], meta["permission"])
        return found

    # -- edit page -------------------------------------------------------------------------------
    def form_fields(self, *, adding: bool) -> list[AdminField]:
        """The fields of the add or change form."""
        exclude = {self.password_field} if self.password_field else set()
        fields = build_fields(self, exclude=exclude)
        if adding:
            # Nothing to show yet for what the database fills in (a generated id, a server
            # timestamp): no "Id —" row on the add form.
            fields = [f for f in fields if not f.readonly or f.name in self.readonly_fields]
        return fields

    def choice_label(self, field: AdminField, obj: Any) -> str | None:
        """How a related row is named in this model's form (``None``: its admin's label)."""
        return None

    def choice_group(self, field: AdminField, obj: Any) -> str:
        """The heading a related row is listed under in a many-to-many picker ("" for none)."""
        return ""

    def object_options(self) -> list[Any]:
        """Loader options for the edit page (many-to-many collections)."""
        return [
            selectinload(getattr(self.model, rel.key))
            for rel in self.mapper.relationships
            if rel.secondary is not None and rel.uselist
        ]

    async def get_object(self, request: Request, db: DbSession, pk: Any) -> Any | None:
        """Load one object (within :meth:`get_queryset`), or ``None``."""
        stmt = self.get_queryset(request).options(*self.object_options())
        conditions = [
            c == v
            for c, v in zip(self.pk_columns, pk if isinstance(pk, tuple) else (pk,), strict=True)
        ]
        try:
            return (await db.execute(stmt.where(*conditions))).scalar_one_or_none()
        except Exception as exc:
            # A key the driver refused to send (beyond the column's integer range): no row
            # has it, so "no such object" (404), as for any other missing id.
            if is_unstorable_value(exc):
                return None
            raise

    async def clean(
        self, request: Request, db: DbSession, form: AdminForm, obj: Any | None, adding: bool
    ) -> None:
        """Validate across fields after each field converted; report with ``form.add_error``."""

    async def save_model(
        self, request: Request, db: DbSession, obj: Any, data: dict[str, Any], adding: bool
    ) -> None:
        """Copy the validated form values onto ``obj`` and flush (override to add behaviour)."""
        for name, value in data.items():
            setattr(obj, name, value)
        if adding:
            db.add(obj)
        await db.flush()

    async def delete_model(self, request: Request, db: DbSession, obj: Any) -> None:
        """Delete ``obj`` and flush."""
        await db.delete(obj)
        await db.flush()

    async def after_save(
        self, request: Request, db: DbSession, obj: Any, adding: bool
    ) -> Response | None:
        """Hook after a successful save, before the redirect; return a response to replace it."""
        return None


async def call_action(
    func: ActionFunc, admin: ModelAdmin, request: Request, db: DbSession, objects: list[Any]
) -> Any:
    """Run a bulk action, whatever its exact signature style."""
    result = func(admin, request, db, objects)
    if inspect.isawaitable(result):
        result = await result
    return result


def _match(model: type[Any], path: list[str], mode: str, term: str) -> Any:
    """The condition "``path`` of ``model`` matches ``term``", or None when it can't."""
    attr = getattr(model, path[0])
    prop = attr.property
    if len(path) > 1:
        target = prop.mapper.class_
        inner = _match(target, path[1:], mode, term)
        if inner is None:
            return None
        return attr.any(inner) if prop.uselist else attr.has(inner)
    column_type = prop.columns[0].type
    target = attr
    if not isinstance(column_type, String):
        if mode == "exact":
            try:
                return attr == column_type.python_type(term)
            except (ValueError, TypeError, NotImplementedError):
                return None
        target = cast(attr, String)
    if mode == "exact":
        return target == term
    if mode == "starts":
        return target.startswith(term, autoescape=True)
    # lower(x) LIKE '%term%': what ILIKE finds, and much faster on PostgreSQL.
    pattern = "%" + _escape_like(term.lower()) + "%"
    return func.lower(target).like(pattern, escape="/")


def _escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _app_label(model: type[Any]) -> str:
    # The same rule as the auth battery's permission codenames, so "auth.view_user" in the
    # admin is the permission a group grants.
    explicit = getattr(model, "__app_label__", None)
    if explicit:
        return str(explicit)
    module = model.__module__ or "main"
    parts = [p for p in module.split(".") if p not in ("models", "__main__", "")]
    return (parts[0] if parts else "main").strip("_") or "main"


def _pluralise(name: str) -> str:
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "z", "ch", "sh")):
        return name + "es"
    return name + "s"
