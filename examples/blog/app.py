"""The example blog: HTML pages and a typed JSON API.

Run it with `make demo` (or `transom run --debug` in this folder), then open
http://127.0.0.1:8000/ and http://127.0.0.1:8000/docs. Later batteries (database, templates,
sessions, auth, admin) extend this same app.
"""

from __future__ import annotations

import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from transom import App, HTTPException, Query, RedirectResponse, Request, Response, Router, render
from transom.forms import Form, Widget, flash
from transom.security import Security
from transom.settings import Settings
from transom.templating import TemplateResponse


class PostIn(BaseModel):
    slug: str = Field(pattern=r"^[a-z0-9-]+$", max_length=80)
    title: str = Field(min_length=1, max_length=200)
    body: str = ""


class Post(PostIn):
    published: datetime.date


class Page(BaseModel):
    items: list[Post]
    total: int
    offset: int
    limit: int


POSTS: dict[str, Post] = {
    "hello-transom": Post(
        slug="hello-transom",
        title="Hello, Transom",
        body="A framework that grows with your app.",
        published=datetime.date(2026, 11, 24),
    ),
}

app = App(Settings(title="Transom blog", version="0.1.0"))
# Sessions, CSRF on every form, CSP with nonces, rate limits: one line, on by default.
Security(app)
api = Router("/api", name="api", tags=["posts"])


class PostForm(Form):
    """The HTML form for writing a post (the API takes PostIn as JSON)."""

    title: str = Field(min_length=1, max_length=200)
    slug: str = Field(
        pattern=r"^[a-z0-9-]+$", max_length=80, description="Lowercase words-with-dashes"
    )
    body: Annotated[str, Widget("textarea", rows=8)] = ""


@app.get("/", include_in_schema=False)
def index() -> TemplateResponse:
    """The list of posts."""
    posts = sorted(POSTS.values(), key=lambda p: p.published, reverse=True)
    return render("index.html", posts=posts)


@app.get("/posts/{slug}", name="post", include_in_schema=False)
def post_page(slug: str) -> TemplateResponse:
    """One post."""
    post = POSTS.get(slug)
    if post is None:
        raise HTTPException(404, "No such post")
    return render("post.html", post=post)


@app.route("/write", methods=["GET", "POST"], name="new_post", include_in_schema=False)
async def new_post(request: Request) -> Response:
    """Write a post: the form comes back with its errors until it is valid."""
    form = await PostForm.from_request(request)
    if form.is_valid and form.data.slug in POSTS:
        form.add_error("slug", "A post with this slug exists.")
    if form.is_valid:
        post = Post(**form.data.model_dump(), published=datetime.date.today())
        POSTS[post.slug] = post
        await flash(request, f"Published “{post.title}”.")
        return RedirectResponse(request.url_for("post", slug=post.slug), 303)
    return render("new.html", form=await form.with_csrf(), status_code=form.status_code)


@api.get("/posts")
def list_posts(
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page:
    """List posts, newest first."""
    ordered = sorted(POSTS.values(), key=lambda p: p.published, reverse=True)
    return Page(
        items=ordered[offset : offset + limit], total=len(ordered), offset=offset, limit=limit
    )


@api.get("/posts/{slug}")
def get_post(slug: str) -> Post:
    """Fetch one post."""
    try:
        return POSTS[slug]
    except KeyError:
        raise HTTPException(404, "No such post") from None


@api.post("/posts", status_code=201)
def create_post(data: PostIn) -> Post:
    """Publish a post."""
    if data.slug in POSTS:
        raise HTTPException(409, f"A post with slug {data.slug!r} exists")
    post = Post(**data.model_dump(), published=datetime.date.today())
    POSTS[post.slug] = post
    return post


@api.delete("/posts/{slug}", status_code=204)
def delete_post(slug: str) -> None:
    """Delete a post."""
    if POSTS.pop(slug, None) is None:
        raise HTTPException(404, "No such post")


app.include_router(api)

if __name__ == "__main__":
    app.run()
