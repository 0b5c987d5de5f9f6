# Django ships no type information (django-stubs is not a dependency):
# mypy: disable-error-code="import-untyped, untyped-decorator, misc"
"""TechEmpower database tests in Django: the ORM on PostgreSQL (psycopg 3), served by gunicorn.

Persistent connections (``CONN_MAX_AGE=None``), as TechEmpower's Django entry runs; the
fortunes page uses the shared Jinja template so that every framework returns the same bytes.
Django's ORM is sync, so one gunicorn sync worker serves one request at a time.
"""

from __future__ import annotations

import contextlib
from random import randint
from urllib.parse import urlsplit

from django.conf import settings

from .tfb_common import DATABASE_URL, clamp_queries, render_fortunes

_url = urlsplit(DATABASE_URL)
_DATABASE = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": _url.path.lstrip("/"),
    "USER": _url.username,
    "PASSWORD": _url.password,
    "HOST": _url.hostname,
    "PORT": _url.port or 5432,
    "CONN_MAX_AGE": None,
}

if settings.configured:
    # bench.apps.django_app configured this process first (the bench tests import both): point
    # its "default" database here; each request below names its own URLconf.
    settings.DATABASES["default"] = _DATABASE
    from django.db import connections

    connections.__dict__.pop("settings", None)  # cached on first use: read DATABASES again
    with contextlib.suppress(AttributeError):
        del connections["default"]  # the placeholder connection made before
else:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={"default": _DATABASE},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )

import django  # noqa: E402

django.setup()

from django.core.handlers.wsgi import WSGIHandler, WSGIRequest  # noqa: E402
from django.db import models, transaction  # noqa: E402
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


class World(models.Model):
    randomnumber = models.IntegerField()

    class Meta:
        app_label = "tfb"
        db_table = "world"
        managed = False


class Fortune(models.Model):
    message = models.CharField(max_length=2048)

    class Meta:
        app_label = "tfb"
        db_table = "fortune"
        managed = False


def _json(data: object) -> JsonResponse:
    return JsonResponse(data, safe=False, json_dumps_params={"separators": (",", ":")})


def single_query(request: HttpRequest) -> HttpResponse:
    world = World.objects.get(id=randint(1, 10000))
    return _json({"id": world.id, "randomNumber": world.randomnumber})


def queries(request: HttpRequest) -> HttpResponse:
    count = clamp_queries(request.GET.get("queries"))
    worlds = [World.objects.get(id=randint(1, 10000)) for _ in range(count)]
    return _json([{"id": w.id, "randomNumber": w.randomnumber} for w in worlds])


def fortunes(request: HttpRequest) -> HttpResponse:
    rows = [(f.id, f.message) for f in Fortune.objects.all()]  # model objects, as the others
    return HttpResponse(render_fortunes(rows), content_type="text/html; charset=utf-8")


def updates(request: HttpRequest) -> HttpResponse:
    count = clamp_queries(request.GET.get("queries"))
    with transaction.atomic():
        worlds = [World.objects.get(id=randint(1, 10000)) for _ in range(count)]
        for world in worlds:
            world.randomnumber = randint(1, 10000)
        # Batched, as TechEmpower allows and the other apps do: Django's bulk_update (one
        # UPDATE ... CASE for the distinct rows, in id order so concurrent requests don't
        # deadlock).
        latest = {w.id: w for w in worlds}
        World.objects.bulk_update([latest[i] for i in sorted(latest)], ["randomnumber"])
    return _json([{"id": w.id, "randomNumber": latest[w.id].randomnumber} for w in worlds])


urlpatterns = [
    path("db", single_query),
    path("queries", queries),
    path("fortunes", fortunes),
    path("updates", updates),
]


class _Handler(WSGIHandler):
    def get_response(self, request: WSGIRequest) -> HttpResponseBase:
        request.urlconf = __name__
        return super().get_response(request)


app = _Handler()
