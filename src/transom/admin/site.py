"""``Admin``: the admin site of one app: registration, routes, templates and assets."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload
from urllib.parse import urlencode

from transom.admin.auth import AuthBackend, cached_user, default_backend
from transom.admin.options import ModelAdmin
from transom.batteries import Battery, split_arguments
from transom.exceptions import HTTPException, ImproperlyConfigured
from transom.requests import Request
from transom.responses import RedirectResponse, Response
from transom.routing import Router
from transom.staticfiles import StaticFiles

if TYPE_CHECKING:
    from transom.app import App
    from transom.db import DbSession

__all__ = ["Admin", "AdminConfig", "AlreadyRegistered"]

MA = TypeVar("MA", bound=type[ModelAdmin])
STATIC_DIR = Path(__file__).parent / "static"
_SITE_KEY = "transom.admin"


class AlreadyRegistered(ValueError):
    """A model was registered twice on the same admin."""


class Denied(Exception):
    """Raised inside a view: answer with the admin's 403 page."""

    def __init__(self, message: str = "You do not have permission to do this.") -> None:
        super().__init__(message)
        self.message = message


class Ctx:
    """What a view knows about its request: the session, the user and the site."""

    __slots__ = ("db", "request", "site", "user", "user_id", "username")

    def __init__(self, site: Admin, request: Request, db: DbSession, user: Any) -> None:
        self.site = site
        self.request = request
        self.db = db
        self.user = user
        # Read now: a rollback later in the view expires the user object.
        self.username = site.username_of(user)
        self.user_id = site.auth.user_id(user) if user is not None and site.auth else ""

    def model_admin(self) -> ModelAdmin:
        """The registered model named by the URL, or 404."""
        params = self.request.path_params
        found = self.site.lookup(str(params.get("app_label")), str(params.get("model_name")))
        if found is None:
            raise HTTPException(404, "There is no such model in the administration.")
        return found

    async def require(self, admin: ModelAdmin, action: str) -> None:
        """Refuse (403) unless the user holds the permission."""
        if not await admin.has_permission(self.request, self.db, self.user, action):
            raise Denied(f"You do not have permission to {action} {admin.name_plural.lower()}.")


View = Callable[[Ctx], Awaitable[Response]]


@dataclasses.dataclass
class AdminConfig:
    """The settings of :class:`Admin`.

    Attributes:
        prefix: Where the admin lives.
        auth: How users are loaded and checked (default: :mod:`transom.auth`, whose battery
            then comes with its defaults unless the app installs it).
        title: The name in the header and page titles.
        register_auth_models: Also register the user and group models of ``auth``.
        site_url: Where the header's "View site" link goes (``None``: no link).
        time_zone: The IANA time zone that dates and times are shown and typed in
            (lists, forms, history): ``"Europe/Paris"``. Stored values stay UTC.
    """

    prefix: str = "/admin"
    auth: AuthBackend | None = None
    title: str = "Administration"
    register_auth_models: bool = True
    site_url: str | None = "/"
    time_zone: str = "UTC"


class Admin(Battery):
    """The admin site, mounted at ``prefix`` (``/admin``): staff users only.

    ``app.install(Admin(AdminConfig(...)))``; ``Admin(app)`` installs at once and
    ``Admin(app, prefix=...)`` (keyword options) is deprecated. It requires the security
    battery (sessions and CSRF), the templates and, unless ``auth=`` gives another
    :class:`~transom.admin.auth.AuthBackend`, :mod:`transom.auth`: what the app has not
    installed comes with its defaults. Models can be registered before it is installed.

    Example:
        >>> from transom import App
        >>> from transom.admin import Admin, AdminConfig
        >>> app = App()
        >>> admin = app.install(Admin(AdminConfig(title="Back office")))
        >>> Admin.of(app) is admin
        True
    """

    name = _SITE_KEY
    #: Where :class:`~transom.templating.Templates` finds the admin's pages.
    template_packages = ("transom.admin",)

    @overload
    def __init__(self, config: AdminConfig | None = None, /) -> None: ...

    @overload
    def __init__(self, app: App, config: AdminConfig | None = None, /, **options: Any) -> None: ...

    def __init__(self, first: Any = None, second: Any = None, /, **options: Any) -> None:
        super().__init__()
        app, config = split_arguments(Admin, AdminConfig, (first, second), options)
        self.config = config
        self.prefix = config.prefix.rstrip("/")
        self._default_auth = config.auth is None
        self.auth: AuthBackend | None = (
            config.auth if config.auth is not None else default_backend()
        )
        self.title = config.title
        try:
            self.zone: dt.tzinfo = zoneinfo.ZoneInfo(config.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ImproperlyConfigured(
                f"AdminConfig.time_zone: unknown time zone {config.time_zone!r}"
            ) from None
        self.registry: dict[type[Any], ModelAdmin] = {}
        self._by_key: dict[tuple[str, str], ModelAdmin] = {}
        self._static_versions: dict[str, str] = {}
        if config.register_auth_models and self.auth is not None:
            self._register_auth_models()
        if app is not None:
            self.install(app)

    def requirements(self) -> tuple[type[Battery], ...]:
        from transom.db import Database
        from transom.security.extension import Security
        from transom.templating.engine import Templates

        if self._default_auth and self.auth is not None:
            from transom.auth.extension import Auth

            return (Security, Templates, Database, Auth)
        return (Security, Templates, Database)

    def setup(self, app: App) -> None:
        router = Router(self.prefix, name="admin", include_in_schema=False)
        self._add_routes(router)
        app.include_router(router)
        app.mount(f"{self.prefix}/static", StaticFiles(STATIC_DIR), name="admin_static")
        app.add_check(self._check)
        self._use_auth_user_model(early=True)

    # -- registration ----------------------------------------------------------------------------
    @overload
    def register(
        self, model: type[Any], admin_class: None = None, **options: Any
    ) -> Callable[[MA], MA]: ...

    @overload
    def register(
        self, model: type[Any], admin_class: type[ModelAdmin], **options: Any
    ) -> ModelAdmin: ...

    def register(
        self, model: type[Any], admin_class: type[ModelAdmin] | None = None, **options: Any
    ) -> Any:
        """Show ``model`` in the admin; plain, with a ``ModelAdmin`` class, or as a decorator.

        ``admin.register(Article)`` uses the defaults; ``admin.register(Article,
        list_display=["title"])`` sets options inline; ``@admin.register(Author)`` on a
        ``ModelAdmin`` subclass uses that class.

        Raises:
            AlreadyRegistered: the model is already registered (decorating the call that
                registered it is fine).
        """
        if admin_class is not None or options:
            return self._install(model, admin_class or ModelAdmin, options)
        if model in self.registry:
            raise AlreadyRegistered(f"{model.__name__} is already registered in the admin")
        default = self._install(model, ModelAdmin, {})

        def decorate(cls: MA) -> MA:
            if not (isinstance(cls, type) and issubclass(cls, ModelAdmin)):
                raise TypeError("@admin.register(Model) decorates a ModelAdmin subclass")
            self._remove(default)
            self._install(model, cls, {})
            return cls

        return decorate

    def unregister(self, model: type[Any]) -> None:
        """Remove ``model`` from the admin."""
        admin = self.registry.get(model)
        if admin is None:
            raise KeyError(f"{model.__name__} is not registered")
        self._remove(admin)

    def _install(
        self, model: type[Any], cls: type[ModelAdmin], options: dict[str, Any]
    ) -> ModelAdmin:
        if model in self.registry:
            raise AlreadyRegistered(f"{model.__name__} is already registered in the admin")
        if options:
            unknown = [k for k in options if not hasattr(ModelAdmin, k)]
            if unknown:
                raise TypeError(f"unknown ModelAdmin options: {', '.join(sorted(unknown))}")
            cls = type(f"{model.__name__}Admin", (cls,), dict(options))
        admin = cls(model, self)
        key = (str(admin.app_label), admin.model_name)
        if key in self._by_key:
            raise AlreadyRegistered(f"another model is registered as {admin.key}")
        self.registry[model] = admin
        self._by_key[key] = admin
        return admin

    def _remove(self, admin: ModelAdmin) -> None:
        self.registry.pop(admin.model, None)
        self._by_key.pop((str(admin.app_label), admin.model_name), None)

    def _use_auth_user_model(self, *, early: bool = False) -> None:
        # The default backend serves the Auth battery's user model (AuthConfig.user_model),
        # known once the app is built: every battery is installed by then.
        from transom.admin._transom_auth import TransomAuth
        from transom.auth.extension import Auth

        if not (self._default_auth and isinstance(self.auth, TransomAuth)):
            return
        if self.auth.user_model is not None:
            return
        auth = self.app.batteries.find(Auth) if early else Auth.of(self.app)
        if auth is None:  # installed later: the app's build binds it
            return
        self.auth.use_user_model(auth.user_model, auth.validators)
        if self.config.register_auth_models:
            self._register_auth_models()

    def _register_auth_models(self) -> None:
        from transom.admin.users import GroupAdmin, UserAdmin

        auth = self.auth
        assert auth is not None
        if auth.user_model is not None and auth.user_model not in self.registry:
            self._install(auth.user_model, UserAdmin, {})
        if auth.group_model is not None and auth.group_model not in self.registry:
            self._install(auth.group_model, GroupAdmin, {})

    async def ensure_superuser(self, username: str, password: str | None = None) -> str | None:
        """Create an active staff superuser named ``username`` unless that user exists.

        Meant for demos and first runs (``make demo`` prints what it returns).

        Args:
            username: The login name.
            password: The password; a random one when omitted.

        Returns:
            The password of the user just created, or ``None`` when it already existed.
        """
        import secrets

        from sqlalchemy import select

        from transom.db import get_database

        self._use_auth_user_model()
        auth = self.auth
        if auth is None or auth.user_model is None:
            raise ImproperlyConfigured("the admin's auth backend has no user model")
        model = auth.user_model
        column = getattr(model, auth.username_field)
        database = get_database(self.app)
        async with database.session() as db:
            if (await db.execute(select(model).where(column == username))).first() is not None:
                return None
            chosen = password or secrets.token_urlsafe(12)
            user = model()
            setattr(user, auth.username_field, username)
            for flag in ("is_active", "is_staff", "is_superuser"):
                setattr(user, flag, True)
            with self._app_hashers():
                await auth.aset_password(user, chosen)
            db.add(user)
            await db.commit()
        return chosen

    def _app_hashers(self) -> contextlib.AbstractContextManager[Any]:
        # Called outside requests (a start-up hook, a script): hash with this app's hashers,
        # which transom.auth otherwise sets for each request.
        from transom.auth.extension import Auth

        auth = self.app.batteries.find(Auth) if self._default_auth else None
        return auth.activate() if auth is not None else contextlib.nullcontext()

    def lookup(self, app_label: str, model_name: str) -> ModelAdmin | None:
        """The registered admin for a URL's ``app_label``/``model_name``."""
        return self._by_key.get((app_label, model_name))

    def admin_for(self, model: type[Any]) -> ModelAdmin | None:
        """The registered admin of ``model``, if any."""
        return self.registry.get(model)

    # -- URLs ------------------------------------------------------------------------------------
    def url(self, view: str = "index", **query: Any) -> str:
        """A site-level URL: ``index``, ``login``, ``logout``, ``password`` (my password)."""
        path = {"index": "", "login": "/login", "logout": "/logout", "password": "/password"}[view]
        url = (self.prefix + path) or "/"
        return url + ("?" + urlencode(query) if query else "")

    def model_url(self, admin: ModelAdmin, view: str = "list", pk: Any = None, **query: Any) -> str:
        """The URL of one of a model's pages."""
        base = f"{self.prefix}/{admin.app_label}/{admin.model_name}"
        if view == "list":
            url = base
        elif view in ("add", "autocomplete"):
            url = f"{base}/{view}"
        else:
            from urllib.parse import quote

            url = f"{base}/{quote(str(pk), safe=',')}/{view}"
        clean = {k: v for k, v in query.items() if v not in (None, "")}
        return url + ("?" + urlencode(clean, doseq=True) if clean else "")

    def when(self, value: Any) -> str:
        """A date or time as every admin page writes it (see ``format_moment``)."""
        from transom.admin.forms import format_moment

        found = format_moment(value, self.zone)
        return found if found is not None else ("—" if value is None else str(value))

    def static(self, name: str) -> str:
        """URL of an admin asset, versioned by its content (safe to cache for long)."""
        version = self._static_versions.get(name)
        if version is None:
            try:
                digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
            except OSError:
                digest = "0"
            version = self._static_versions[name] = digest
        return f"{self.prefix}/static/{name}?v={version}"

    # -- plumbing --------------------------------------------------------------------------------
    def _check(self) -> None:
        if self.auth is None:
            raise ImproperlyConfigured(
                "transom.admin needs users: install transom.auth or pass "
                "AdminConfig(auth=SessionAuth(User))"
            )
        self._use_auth_user_model()

    def _way_back(self, request: Request) -> str:
        params = request.path_params
        found = self.lookup(str(params.get("app_label")), str(params.get("model_name")))
        return found.url("list") if found is not None and "pk" in params else self.url()

    def _wrap(
        self, view: View, *, staff: bool = True, page: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        """``view`` as an endpoint; ``page`` is False for data (JSON) views, whose 404 stays."""
        from transom.db import get_database
        from transom.forms import flash
        from transom.templating import render

        async def endpoint(request: Request) -> Response:
            database = get_database(request.app)
            async with database.session() as db:
                user = None
                if staff:
                    assert self.auth is not None
                    user = await cached_user(self.auth, request, db)
                    if user is None or not getattr(user, "is_active", False):
                        target = request.url.path
                        if request.url.query:
                            target += "?" + request.url.query
                        if request.method not in ("GET", "HEAD"):
                            raise HTTPException(403, "Log in first")
                        return RedirectResponse(self.url("login", next=target), 302)
                    if not getattr(user, "is_staff", False):
                        return render(
                            "admin/denied.html",
                            status_code=403,
                            **self.context(request, self.username_of(user), title="Staff only"),
                            message="This account may not use the administration.",
                        )
                ctx = Ctx(self, request, db, user)
                try:
                    return await view(ctx)
                except HTTPException as exc:
                    if exc.status_code != 404 or not page:
                        raise
                    # Inside the admin, a missing object or model leads back into it (the
                    # model's list, else the dashboard) with the reason, not to a bare 404.
                    await flash(request, str(exc.detail), "error")
                    return RedirectResponse(self._way_back(request), 303)
                except Denied as exc:
                    return render(
                        "admin/denied.html",
                        status_code=403,
                        **self.context(request, ctx.username, title="Permission denied"),
                        message=exc.message,
                    )

        endpoint.__name__ = view.__name__
        endpoint.__doc__ = view.__doc__
        return endpoint

    def username_of(self, user: Any) -> str:
        """What the header shows for ``user``."""
        if user is None or self.auth is None:
            return ""
        return str(getattr(user, self.auth.username_field, "") or user)

    def context(self, request: Request, username: str, **extra: Any) -> dict[str, Any]:
        """Variables every admin template gets (``username`` is empty when logged out)."""
        return {
            "site": self,
            "user": bool(username),
            "username": username,
            "title": extra.pop("title", self.title),
            "breadcrumbs": extra.pop("breadcrumbs", []),
            **extra,
        }

    def _add_routes(self, router: Router) -> None:
        from transom.admin import views

        w = self._wrap
        router.add_route("", w(views.index), ["GET"], name="index")
        router.add_route("/login", w(views.login, staff=False), ["GET", "POST"], name="login")
        router.add_route("/logout", w(views.logout, staff=False), ["GET", "POST"], name="logout")
        router.add_route("/password", w(views.own_password), ["GET", "POST"], name="password")
        base = "/{app_label}/{model_name}"
        router.add_route(base, w(views.changelist), ["GET", "POST"], name="list")
        router.add_route(f"{base}/add", w(views.add), ["GET", "POST"], name="add")
        router.add_route(
            f"{base}/autocomplete", w(views.autocomplete, page=False), ["GET"], name="autocomplete"
        )
        router.add_route(f"{base}/{{pk}}/change", w(views.change), ["GET", "POST"], name="change")
        router.add_route(f"{base}/{{pk}}/delete", w(views.delete), ["GET", "POST"], name="delete")
        router.add_route(f"{base}/{{pk}}/history", w(views.history), ["GET"], name="history")
        router.add_route(
            f"{base}/{{pk}}/password", w(views.password), ["GET", "POST"], name="password"
        )

    def visible_models(self) -> list[ModelAdmin]:
        """Registered models, sorted by group then name."""
        return sorted(
            self.registry.values(), key=lambda a: (str(a.app_label), a.name_plural.lower())
        )
