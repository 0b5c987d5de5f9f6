"""Permissions: per-model codenames, groups, ``@requires`` and object-level rules.

Every model gets ``<app>.view_<model>``, ``add``, ``change`` and ``delete`` (``app`` is the
model's top-level package, or its ``__app_label__``), plus what it lists in
``__permissions__ = [("publish_article", "Can publish articles")]``. Object rules decide for
one object: ``@object_rule("blog.change_article")`` ``def owner(user, article): ...`` returns
True (allow), False (deny, even with the model permission) or None (no opinion).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase

from transom.auth.models import Permission, group_permissions
from transom.db import Model

if TYPE_CHECKING:
    from transom.db import DbSession

__all__ = [
    "ACTIONS",
    "ObjectRule",
    "app_label",
    "clear_object_rules",
    "model_permissions",
    "object_rule",
    "sync_permissions",
    "user_has_perm",
    "user_permissions",
]

ACTIONS = ("view", "add", "change", "delete")
F = TypeVar("F", bound=Callable[..., Any])
ObjectRule = Callable[[Any, Any], "bool | Awaitable[bool | None] | None"]
_rules: dict[str, list[ObjectRule]] = {}
_CACHE_ATTR = "_transom_perm_cache"


def app_label(model: type[Any]) -> str:
    """The app part of a model's codenames: ``__app_label__`` or its top-level package."""
    explicit = getattr(model, "__app_label__", None)
    if explicit:
        return str(explicit)
    parts = [p for p in (model.__module__ or "").split(".") if p not in ("models", "__main__", "")]
    return (parts[0] if parts else "main").strip("_") or "main"


def model_permissions(model: type[Any]) -> list[tuple[str, str]]:
    """``(codename, name)`` pairs for ``model``: the four actions and its custom ones."""
    label = app_label(model)
    name = model.__name__.lower()
    perms = [(f"{label}.{action}_{name}", f"Can {action} {name}") for action in ACTIONS]
    for codename, title in getattr(model, "__permissions__", ()):
        perms.append((f"{label}.{codename}", title))
    return perms


def _models(base: type[DeclarativeBase]) -> Iterable[type[Any]]:
    for mapper in base.registry.mappers:
        yield mapper.class_


async def sync_permissions(db: DbSession, models: Iterable[type[Any]] | None = None) -> list[str]:
    """Create the missing permission rows for ``models`` (default: every mapped model).

    Safe to run concurrently (two workers starting): a row another process just inserted is
    skipped. Returns the codenames created.
    """
    wanted: dict[str, str] = {}
    for model in _models(Model) if models is None else models:
        wanted.update(model_permissions(model))
    existing = set((await db.execute(select(Permission.codename))).scalars())
    created = []
    for codename, name in wanted.items():
        if codename in existing:
            continue
        try:
            async with db.begin_nested():
                db.add(Permission(codename=codename, name=name))
            created.append(codename)
        except IntegrityError:
            continue
    await db.flush()
    return created


def object_rule(*perms: str) -> Callable[[F], F]:
    """Register ``rule(user, obj)`` deciding ``perms`` for one object (sync or async).

    Example:
        >>> @object_rule("blog.change_article", "blog.delete_article")
        ... def authors_edit_their_articles(user, article):
        ...     return article.author_id == user.id or None
        >>> clear_object_rules()
    """

    def register(func: F) -> F:
        for perm in perms:
            _rules.setdefault(perm, []).append(func)
        return func

    return register


def clear_object_rules() -> None:
    """Forget every registered object rule (tests)."""
    _rules.clear()


async def user_permissions(user: Any, db: DbSession) -> set[str]:
    """The codenames ``user`` holds directly or through groups (cached on the object)."""
    cached: set[str] | None = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if not getattr(user, "is_active", False):
        perms: set[str] = set()
    elif getattr(user, "is_superuser", False):
        perms = set((await db.execute(select(Permission.codename))).scalars())
    else:
        perms = await _granted(user, db)
    # Not a mapped attribute: lives as long as this object (one request, usually).
    object.__setattr__(user, _CACHE_ATTR, perms)
    return perms


async def _granted(user: Any, db: DbSession) -> set[str]:
    mapper = type(user).__mapper__
    groups_rel = mapper.relationships.get("groups")
    perms_rel = mapper.relationships.get("user_permissions")
    queries = []
    if perms_rel is not None and perms_rel.secondary is not None:
        link = perms_rel.secondary
        queries.append(
            select(Permission.codename)
            .join(link, link.c.permission_id == Permission.id)
            .where(link.c.user_id == user.id)
        )
    if groups_rel is not None and groups_rel.secondary is not None:
        link = groups_rel.secondary
        queries.append(
            select(Permission.codename)
            .join(group_permissions, group_permissions.c.permission_id == Permission.id)
            .join(link, link.c.group_id == group_permissions.c.group_id)
            .where(link.c.user_id == user.id)
        )
    if not queries:
        return set()
    statement = queries[0] if len(queries) == 1 else union(*queries)
    return {row[0] for row in await db.execute(statement)}


async def user_has_perm(user: Any, perm: str, db: DbSession, obj: Any | None = None) -> bool:
    """Active superusers hold everything; for ``obj``, object rules may allow or deny."""
    if user is None or not getattr(user, "is_active", False):
        return False
    if getattr(user, "is_superuser", False):
        return True
    if obj is not None:
        verdicts = []
        for rule in _rules.get(perm, ()):
            verdict = rule(user, obj)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            verdicts.append(verdict)
        if False in verdicts:
            return False
        if True in verdicts:
            return True
    return perm in await user_permissions(user, db)
