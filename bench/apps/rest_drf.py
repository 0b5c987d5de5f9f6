# Django and DRF ship no type information (django-stubs is not a dependency):
# mypy: disable-error-code="import-untyped, untyped-decorator, misc, no-any-unimported"
"""bench/rest.py's endpoints in Django REST framework, served by gunicorn (one sync worker).

The same tables as the other apps (``bench_post``, ``bench_author``, ``bench_tag``,
``bench_post_tag``), read and written the way DRF's docs suggest: a ``ModelViewSet`` with nested
serializers, ``select_related``/``prefetch_related`` and ``LimitOffsetPagination``; a post is
written with the author and tag ids and answered as read. Persistent connections
(``CONN_MAX_AGE=None``), as the TechEmpower Django app (bench/apps/tfb_django.py) runs; no
middleware, no authentication. The database comes from ``BENCH_REST_DJANGO`` (a
``postgresql://`` URL).

A request with the ``X-Count-Statements`` header answers the number of statements it sent in
that header (the bench's statements-per-request column); other requests skip the counting.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

_url = urlsplit(
    os.environ.get("BENCH_REST_DJANGO", "postgresql://postgres@127.0.0.1:5432/postgres")
)
settings.configure(
    DEBUG=False,
    SECRET_KEY="bench",
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
    ROOT_URLCONF=__name__,
    # This module is the app of its models (the link table of Post.tags needs one).
    INSTALLED_APPS=["rest_framework", __name__],
    MIDDLEWARE=[],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username,
            "PASSWORD": _url.password,
            "HOST": _url.hostname,
            "PORT": _url.port or 5432,
            "CONN_MAX_AGE": None,
        }
    },
    USE_TZ=True,
    TIME_ZONE="UTC",
    LOGGING_CONFIG=None,
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
        "UNAUTHENTICATED_USER": None,
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
        "PAGE_SIZE": 20,
    },
)

import django  # noqa: E402

django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.db import connection, models  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework import serializers, status, viewsets  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.routers import SimpleRouter  # noqa: E402


class Author(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        app_label = "rest_drf"
        db_table = "bench_author"
        managed = False


class Tag(models.Model):
    name = models.CharField(max_length=40, unique=True)

    class Meta:
        app_label = "rest_drf"
        db_table = "bench_tag"
        managed = False


class Post(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(default="")
    created_at = models.DateTimeField(default=timezone.now)
    author = models.ForeignKey(Author, on_delete=models.PROTECT)
    # Django's own link table shape: bench_post_tag(id, post_id, tag_id).
    tags = models.ManyToManyField(Tag, db_table="bench_post_tag")

    class Meta:
        app_label = "rest_drf"
        db_table = "bench_post"
        managed = False


class AuthorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Author
        fields = ["id", "name"]


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name"]


class PostSerializer(serializers.ModelSerializer):
    author = AuthorSerializer(read_only=True)
    tags = TagSerializer(many=True, read_only=True)

    class Meta:
        model = Post
        fields = ["id", "title", "body", "created_at", "author", "tags"]


class PostWriteSerializer(serializers.ModelSerializer):
    """Relations written by id, as the other apps take them."""

    class Meta:
        model = Post
        fields = ["title", "body", "author", "tags"]


class PostViewSet(viewsets.ModelViewSet):
    queryset = Post.objects.select_related("author").prefetch_related("tags").order_by("id")
    serializer_class = PostSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        writer = PostWriteSerializer(data=request.data)
        writer.is_valid(raise_exception=True)
        post = writer.save()
        stored = self.get_queryset().get(pk=post.pk)  # the post as stored, relations loaded
        return Response(PostSerializer(stored).data, status=status.HTTP_201_CREATED)


router = SimpleRouter(trailing_slash=False)
router.register("posts", PostViewSet)
urlpatterns = router.urls


class _Handler(WSGIHandler):
    def get_response(self, request: Any) -> Any:
        if "HTTP_X_COUNT_STATEMENTS" not in request.META:
            return super().get_response(request)
        sent: list[str] = []

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            sent.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            response = super().get_response(request)  # rendered: every statement has run
        response["X-Count-Statements"] = str(len(sent))
        return response


app = _Handler()
