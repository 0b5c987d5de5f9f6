"""Articles (list, feed, CRUD by slug), favourites, comments and tags."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from sqlalchemy import Select, delete, exists, false, func, insert, select
from sqlalchemy.orm import joinedload, selectinload

from conduit_api.deps import CurrentUser, OptionalUser, errors, followed_among, forbidden, not_found
from conduit_api.models import Article, Comment, Tag, User, article_tags, favorites, follows
from conduit_api.schemas import (
    ArticleOut,
    ArticleSummary,
    CommentOut,
    MultipleArticlesResponse,
    MultipleCommentsResponse,
    NewArticleRequest,
    NewCommentRequest,
    SingleArticleResponse,
    SingleCommentResponse,
    TagsResponse,
    UpdateArticleRequest,
)
from conduit_api.users import profile_of
from transom import Query, Router
from transom.db import DbSession, DbSessionDep

router = Router("/api")

#: The most articles one page returns: a larger ``limit`` is lowered to this (the spec sets no
#: maximum, so a client asking for more gets a full page rather than an error).
MAX_LIMIT = 100
#: Offsets past this are refused (422): beyond any real table, and within every engine's range.
MAX_OFFSET = 2**31 - 1

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Articles to skip")]
Limit = Annotated[int, Query(ge=1, description=f"Articles to return (at most {MAX_LIMIT})")]


# --- queries ---


def article_query(viewer: User | None) -> Select[Any]:
    """Articles with everything a response shows, in one query (+1 for all their tags).

    Each row is (article, favorites count, favourited by the viewer, viewer follows the author);
    the author is joined and the tags of the whole page are loaded by one ``IN`` query, so a
    page of 20 costs the same number of queries as a page of 1.
    """
    count = (
        select(func.count())
        .where(favorites.c.article_id == Article.id)
        .correlate(Article)
        .scalar_subquery()
    )
    if viewer is None:
        favorited: Any = false()
        following: Any = false()
    else:
        favorited = exists().where(
            favorites.c.article_id == Article.id, favorites.c.user_id == viewer.id
        )
        following = exists().where(
            follows.c.follower_id == viewer.id, follows.c.followed_id == Article.author_id
        )
    return select(
        Article, count.label("favorites_count"), favorited.label("favorited"), following
    ).options(joinedload(Article.author), selectinload(Article.tags))


def article_out(row: Sequence[Any], schema: type[ArticleSummary] = ArticleOut) -> Any:
    article, favorites_count, favorited, following = row
    fields: dict[str, Any] = {
        "slug": article.slug,
        "title": article.title,
        "description": article.description,
        "tag_list": sorted(tag.name for tag in article.tags),
        "created_at": article.created_at,
        "updated_at": article.updated_at,
        "favorited": bool(favorited),
        "favorites_count": favorites_count,
        "author": profile_of(article.author, bool(following)),
    }
    if schema is ArticleOut:
        fields["body"] = article.body
    return schema(**fields)


async def fetch_article(db: DbSession, slug: str, viewer: User | None) -> SingleArticleResponse:
    """The article as the viewer sees it, or 404."""
    stmt = article_query(viewer).where(Article.slug == slug)
    # Read again after a write in this request: the identity map would keep stale values.
    row = (await db.execute(stmt.execution_options(populate_existing=True))).first()
    if row is None:
        raise not_found("article")
    return SingleArticleResponse(article=article_out(row))


async def get_article(db: DbSession, slug: str) -> Article:
    article = await db.scalar(select(Article).where(Article.slug == slug))
    if article is None:
        raise not_found("article")
    return article


async def own_article(db: DbSession, slug: str, user: User) -> Article:
    """The article, which must be the user's (403 otherwise)."""
    article = await get_article(db, slug)
    if article.author_id != user.id:
        raise forbidden("only the author may change this article")
    return article


async def list_articles(
    db: DbSession, viewer: User | None, filters: Sequence[Any], offset: int, limit: int
) -> MultipleArticlesResponse:
    count = await db.scalar(select(func.count()).select_from(Article).where(*filters)) or 0
    if count <= offset:
        return MultipleArticlesResponse(articles=[], articles_count=count)
    stmt = (
        article_query(viewer)
        .where(*filters)
        .order_by(Article.created_at.desc(), Article.id.desc())
        .offset(offset)
        .limit(min(limit, MAX_LIMIT))
    )
    rows = (await db.execute(stmt)).all()
    return MultipleArticlesResponse(
        articles=[article_out(row, ArticleSummary) for row in rows], articles_count=count
    )


# --- slugs and tags ---


def slugify(title: str) -> str:
    """``"Hello, World!"`` → ``"hello-world"`` (ASCII; ``"article"`` when nothing is left)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:200].rstrip("-")
    return slug or "article"


async def unique_slug(db: DbSession, title: str, article: Article | None = None) -> str:
    """A slug from the title, with a random suffix when another article has it."""
    slug = base = slugify(title)
    taken = select(Article.id).where(Article.slug == slug)
    if article is not None:
        taken = taken.where(Article.id != article.id)
    while await db.scalar(taken):
        slug = f"{base}-{secrets.token_hex(3)}"
        taken = select(Article.id).where(Article.slug == slug)
    return slug


async def tags_named(db: DbSession, names: Iterable[str]) -> list[Tag]:
    """The tags with these names, created when new (in order, duplicates and blanks dropped)."""
    wanted = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    if not wanted:
        return []
    existing = {tag.name: tag for tag in await db.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    return [existing.get(name) or Tag(name=name) for name in wanted]


# --- articles ---


@router.get(
    "/articles",
    tags=["Articles"],
    operation_id="GetArticles",
    responses=errors(401),
)
async def articles(
    db: DbSessionDep,
    viewer: OptionalUser,
    tag: Annotated[str | None, Query(description="Filter by tag")] = None,
    author: Annotated[str | None, Query(description="Filter by author (username)")] = None,
    favorited: Annotated[
        str | None, Query(description="Filter by favorites of a user (username)")
    ] = None,
    offset: Offset = 0,
    limit: Limit = 20,
) -> MultipleArticlesResponse:
    """Most recent articles globally, filtered by tag, author or who favourited them."""
    filters: list[Any] = []
    if tag is not None:
        filters.append(Article.tags.any(Tag.name == tag))
    if author is not None:
        filters.append(Article.author_id.in_(select(User.id).where(User.username == author)))
    if favorited is not None:
        fans = select(favorites.c.article_id).join(User, User.id == favorites.c.user_id)
        filters.append(Article.id.in_(fans.where(User.username == favorited)))
    return await list_articles(db, viewer, filters, offset, limit)


@router.get(
    "/articles/feed",
    tags=["Articles"],
    operation_id="GetArticlesFeed",
    responses=errors(401),
)
async def feed(
    db: DbSessionDep, viewer: CurrentUser, offset: Offset = 0, limit: Limit = 20
) -> MultipleArticlesResponse:
    """Most recent articles by the users the viewer follows."""
    followed = select(follows.c.followed_id).where(follows.c.follower_id == viewer.id)
    return await list_articles(db, viewer, [Article.author_id.in_(followed)], offset, limit)


@router.post(
    "/articles",
    status_code=201,
    tags=["Articles"],
    operation_id="CreateArticle",
    responses=errors(401),
)
async def create_article(
    data: NewArticleRequest, db: DbSessionDep, user: CurrentUser
) -> SingleArticleResponse:
    """Create an article; its slug comes from the title."""
    new = data.article
    article = Article(
        slug=await unique_slug(db, new.title),
        title=new.title,
        description=new.description,
        body=new.body,
        author_id=user.id,
        tags=await tags_named(db, new.tag_list),
    )
    await db.save(article)
    return await fetch_article(db, article.slug, user)


@router.get(
    "/articles/{slug}",
    tags=["Articles"],
    operation_id="GetArticle",
    responses=errors(401, 404),
)
async def article(slug: str, db: DbSessionDep, viewer: OptionalUser) -> SingleArticleResponse:
    """One article, by its slug."""
    return await fetch_article(db, slug, viewer)


@router.put(
    "/articles/{slug}",
    tags=["Articles"],
    operation_id="UpdateArticle",
    responses=errors(401, 403, 404),
)
async def update_article(
    slug: str, data: UpdateArticleRequest, db: DbSessionDep, user: CurrentUser
) -> SingleArticleResponse:
    """Change an article's title, description or body (its author only); a new title gives a
    new slug."""
    article = await own_article(db, slug, user)
    change = data.article
    if change.title is not None and change.title != article.title:
        article.slug = await unique_slug(db, change.title, article)
        article.title = change.title
    if change.description is not None:
        article.description = change.description
    if change.body is not None:
        article.body = change.body
    article.updated_at = dt.datetime.now(dt.UTC)
    await db.flush()
    return await fetch_article(db, article.slug, user)


@router.delete(
    "/articles/{slug}",
    status_code=204,
    tags=["Articles"],
    operation_id="DeleteArticle",
    responses=errors(401, 403, 404),
)
async def delete_article(slug: str, db: DbSessionDep, user: CurrentUser) -> None:
    """Delete an article with its comments and favourites (its author only)."""
    article = await own_article(db, slug, user)
    # Core deletes: the same on every engine, whether or not it enforces ON DELETE CASCADE.
    await db.execute(delete(Comment).where(Comment.article_id == article.id))
    await db.execute(delete(favorites).where(favorites.c.article_id == article.id))
    await db.execute(delete(article_tags).where(article_tags.c.article_id == article.id))
    await db.execute(delete(Article).where(Article.id == article.id))


# --- favourites ---


@router.post(
    "/articles/{slug}/favorite",
    tags=["Favorites"],
    operation_id="CreateArticleFavorite",
    responses=errors(401, 404),
)
async def favorite(slug: str, db: DbSessionDep, user: CurrentUser) -> SingleArticleResponse:
    """Favourite an article (again changes nothing)."""
    article = await get_article(db, slug)
    mine = exists().where(favorites.c.article_id == article.id, favorites.c.user_id == user.id)
    if not await db.scalar(select(mine)):
        await db.execute(insert(favorites).values(user_id=user.id, article_id=article.id))
    return await fetch_article(db, slug, user)


@router.delete(
    "/articles/{slug}/favorite",
    tags=["Favorites"],
    operation_id="DeleteArticleFavorite",
    responses=errors(401, 404),
)
async def unfavorite(slug: str, db: DbSessionDep, user: CurrentUser) -> SingleArticleResponse:
    """Unfavourite an article."""
    article = await get_article(db, slug)
    await db.execute(
        delete(favorites).where(
            favorites.c.article_id == article.id, favorites.c.user_id == user.id
        )
    )
    return await fetch_article(db, slug, user)


# --- comments ---


async def comments_out(
    db: DbSession, comments: Sequence[Comment], viewer: User | None
) -> list[CommentOut]:
    followed = await followed_among(db, viewer, {c.author_id for c in comments})
    return [
        CommentOut(
            id=c.id,
            created_at=c.created_at,
            updated_at=c.updated_at,
            body=c.body,
            author=profile_of(c.author, c.author_id in followed),
        )
        for c in comments
    ]


@router.get(
    "/articles/{slug}/comments",
    tags=["Comments"],
    operation_id="GetArticleComments",
    responses=errors(401, 404),
)
async def comments(slug: str, db: DbSessionDep, viewer: OptionalUser) -> MultipleCommentsResponse:
    """An article's comments, newest first."""
    article = await get_article(db, slug)
    found = await db.scalars(
        select(Comment)
        .where(Comment.article_id == article.id)
        .options(joinedload(Comment.author))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
    )
    return MultipleCommentsResponse(comments=await comments_out(db, found.all(), viewer))


@router.post(
    "/articles/{slug}/comments",
    tags=["Comments"],
    operation_id="CreateArticleComment",
    responses=errors(401, 404),
)
async def add_comment(
    slug: str, data: NewCommentRequest, db: DbSessionDep, user: CurrentUser
) -> SingleCommentResponse:
    """Comment on an article (the spec answers 200, not 201)."""
    article = await get_article(db, slug)
    comment = await db.save(Comment(body=data.comment.body, article_id=article.id, author=user))
    return SingleCommentResponse(comment=(await comments_out(db, [comment], user))[0])


@router.delete(
    "/articles/{slug}/comments/{id}",
    status_code=204,
    tags=["Comments"],
    operation_id="DeleteArticleComment",
    responses=errors(401, 403, 404),
)
async def delete_comment(slug: str, id: int, db: DbSessionDep, user: CurrentUser) -> None:
    """Delete a comment (its author only)."""
    article = await get_article(db, slug)
    # By primary key: an id the column can't hold (past 2**31 on PostgreSQL) finds nothing.
    comment = await db.get(Comment, id)
    if comment is None or comment.article_id != article.id:
        raise not_found("comment")
    if comment.author_id != user.id:
        raise forbidden("only the author may delete this comment")
    await db.execute(delete(Comment).where(Comment.id == comment.id))


# --- tags ---


@router.get(
    "/tags",
    tags=["Tags"],
    operation_id="GetTags",
)
async def tags(db: DbSessionDep) -> TagsResponse:
    """The tags in use, most used first."""
    names = await db.scalars(
        select(Tag.name)
        .join(article_tags, article_tags.c.tag_id == Tag.id)
        .group_by(Tag.id, Tag.name)
        .order_by(func.count().desc(), Tag.name)
    )
    return TagsResponse(tags=list(names))
