"""Transom's REST battery: a SQLAlchemy model served as a complete, documented JSON API.

Example:
    >>> from transom.rest import ModelResource, IsAuthenticatedOrReadOnly
    >>> # class Posts(ModelResource, model=Post, prefix="/api/posts"):
    >>> #     filters = ["author", "published_at__gte"]
    >>> # app.include(Posts)

See ``docs/rest.md``.
"""

from transom.rest.battery import EXTENSION_KEY, Rest, RestConfig
from transom.rest.context import Context, action
from transom.rest.errors import Problem
from transom.rest.permissions import (
    SAFE_METHODS,
    AllowAny,
    IsAuthenticated,
    IsAuthenticatedOrReadOnly,
    ModelPermissions,
    OwnerCanEdit,
    Permission,
)
from transom.rest.resource import ModelResource

__all__ = [
    "EXTENSION_KEY",
    "SAFE_METHODS",
    "AllowAny",
    "Context",
    "IsAuthenticated",
    "IsAuthenticatedOrReadOnly",
    "ModelPermissions",
    "ModelResource",
    "OwnerCanEdit",
    "Permission",
    "Problem",
    "Rest",
    "RestConfig",
    "action",
]
