"""The resources the REST tests serve."""

from __future__ import annotations

import datetime as dt
from typing import Any

from transom.rest import (
    Context,
    IsAuthenticatedOrReadOnly,
    ModelPermissions,
    ModelResource,
    OwnerCanEdit,
    action,
)

from .models import Label, Status, Story

FIELDS = [
    "id",
    "slug",
    "title",
    "body",
    "status",
    "score",
    "published_at",
    "created_at",
    "author",
    "labels",
]


class Stories(ModelResource, model=Story, prefix="/api/stories"):
    lookup = "slug"
    fields = FIELDS
    read_only = ["id", "author", "created_at"]
    filters = [
        "author",
        "score__gte",
        "score__lte",
        "status",
        "published_at__isnull",
        "labels",
        "labels__in",
        "slug__in",
        "title__icontains",
    ]
    ordering = ["-created_at", "title", "score"]
    search = ["title", "body"]
    permissions = [IsAuthenticatedOrReadOnly, OwnerCanEdit("author")]
    max_limit = 50

    @action(["POST"])
    async def publish(self, ctx: Context, story: Story) -> Story:
        story.status = Status.published
        story.published_at = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
        return story

    @action(["GET"], detail=False)
    async def drafts(self, ctx: Context) -> dict[str, Any]:
        return {"count": 0}


class Labels(ModelResource, model=Label, prefix="/api/labels"):
    permissions = [ModelPermissions()]
