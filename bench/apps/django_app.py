# Django ships no type information (django-stubs is not a dependency):
# mypy: disable-error-code="import-untyped, untyped-decorator, misc"
"""Django as a single file: settings in code, no database, no middleware, WSGI handler.

``routes_1000`` and ``routes_10`` are WSGI handlers that set ``request.urlconf`` (Django's own
per-request URLconf hook) so that one process can host the three apps from one settings module.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )

import django

django.setup()

from django.core.handlers.wsgi import WSGIHandler, WSGIRequest  # noqa: E402
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse  # noqa: E402
from django.urls import URLPattern, path  # noqa: E402
from django.views.decorators.http import require_GET, require_POST  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from .common import HELLO, Item  # noqa: E402

_COMPACT = {"separators": (",", ":")}


def _json(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, json_dumps_params=_COMPACT)


@require_GET
def plaintext(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HELLO, content_type="text/plain; charset=utf-8")


@require_GET
def json(request: HttpRequest) -> HttpResponse:
    return _json({"message": HELLO})


@require_POST
def typed(request: HttpRequest, item_id: int) -> HttpResponse:
    q = request.GET.get("q")
    limit_text = request.GET.get("limit")
    if q is None or limit_text is None:
        return _json({"detail": "missing query parameter"}, 422)
    try:
        limit = int(limit_text)
    except ValueError:
        return _json({"detail": "limit must be an integer"}, 422)
    try:
        item = Item.model_validate_json(request.body)
    except ValidationError as exc:
        return _json({"detail": exc.errors(include_url=False)}, 422)
    return _json(
        {"item_id": item_id, "q": q, "limit": limit, "name": item.name, "total": item.price * limit}
    )


urlpatterns = [
    path("plaintext", plaintext),
    path("json", json),
    path("typed/<int:item_id>", typed),
]


class _URLConf:
    def __init__(self, patterns: list[URLPattern]) -> None:
        self.urlpatterns = patterns


class _RoutesHandler(WSGIHandler):
    def __init__(self, urlconf: _URLConf) -> None:
        super().__init__()
        self._urlconf = urlconf

    def get_response(self, request: WSGIRequest) -> HttpResponseBase:
        request.urlconf = self._urlconf
        return super().get_response(request)


def make_routes_app(count: int) -> WSGIHandler:
    def make(route: int) -> URLPattern:
        @require_GET
        def endpoint(request: HttpRequest, id: int) -> HttpResponse:
            return _json({"route": route, "id": id})

        return path(f"r{route}/<int:id>", endpoint, name=f"r{route}")

    return _RoutesHandler(_URLConf([make(i) for i in range(count)]))


app = WSGIHandler()
routes_1000 = make_routes_app(1000)
routes_10 = make_routes_app(10)
