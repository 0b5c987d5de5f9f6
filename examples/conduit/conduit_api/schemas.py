"""The request and response bodies of the spec (openapi.yml in the RealWorld repository).

Every body is wrapped in an envelope (``{"user": {...}}``, ``{"article": {...}}``) and fields
are camelCase on the wire. Python names stay snake_case: ``alias_generator=to_camel`` names the
wire fields and ``serialize_by_alias=True`` makes responses use those names (Transom renders
a response model with Pydantic's defaults, so without it the JSON would be snake_case while
``/openapi.json`` shows camelCase).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Schema(BaseModel):
    """camelCase on the wire, in both directions; unknown fields are ignored (clients send
    extra ones, like ``tagList`` on an update)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        serialize_by_alias=True,
        validate_by_name=True,  # handlers build responses with the Python names
        from_attributes=True,
    )


#: A tag: trimmed, 1 to 100 characters.
TagName = Annotated[str, Field(min_length=1, max_length=100)]


# --- users ---


class LoginUser(Schema):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=4096)


class LoginUserRequest(Schema):
    user: LoginUser


class NewUser(Schema):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=4096)


class NewUserRequest(Schema):
    user: NewUser


class UpdateUser(Schema):
    """Every field optional; at least one is required (checked in the handler)."""

    email: str | None = Field(None, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str | None = Field(None, min_length=1, max_length=4096)
    username: str | None = Field(None, min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
    bio: str | None = Field(None, max_length=10_000)
    image: str | None = Field(None, max_length=1000)


class UpdateUserRequest(Schema):
    user: UpdateUser


class UserOut(Schema):
    email: str
    token: str
    username: str
    bio: str
    image: str


class UserResponse(Schema):
    user: UserOut


# --- profiles ---


class Profile(Schema):
    username: str
    bio: str
    image: str
    following: bool


class ProfileResponse(Schema):
    profile: Profile


# --- articles ---


class NewArticle(Schema):
    title: str = Field(min_length=1, max_length=255)
    description: str = Field(min_length=1, max_length=10_000)
    body: str = Field(min_length=1, max_length=1_000_000)
    tag_list: list[TagName] = Field(default_factory=list, max_length=20)


class NewArticleRequest(Schema):
    article: NewArticle


class UpdateArticle(Schema):
    title: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, min_length=1, max_length=10_000)
    body: str | None = Field(None, min_length=1, max_length=1_000_000)


class UpdateArticleRequest(Schema):
    article: UpdateArticle


class ArticleSummary(Schema):
    """An article in a list: everything but the body (the spec leaves it out of lists)."""

    slug: str
    title: str
    description: str
    tag_list: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    favorited: bool
    favorites_count: int
    author: Profile


class ArticleOut(ArticleSummary):
    body: str


class SingleArticleResponse(Schema):
    article: ArticleOut


class MultipleArticlesResponse(Schema):
    articles: list[ArticleSummary]
    articles_count: int


# --- comments ---


class NewComment(Schema):
    body: str = Field(min_length=1, max_length=100_000)


class NewCommentRequest(Schema):
    comment: NewComment


class CommentOut(Schema):
    id: int
    created_at: dt.datetime
    updated_at: dt.datetime
    body: str
    author: Profile


class SingleCommentResponse(Schema):
    comment: CommentOut


class MultipleCommentsResponse(Schema):
    comments: list[CommentOut]


# --- tags and errors ---


class TagsResponse(Schema):
    tags: list[str]


class ErrorBody(Schema):
    body: list[str]


class GenericErrorModel(Schema):
    """The spec's one error shape: ``{"errors": {"body": ["...", ...]}}``."""

    errors: ErrorBody
