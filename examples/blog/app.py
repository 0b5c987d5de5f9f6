"""The example blog: HTML pages, a typed JSON API, users, an admin, and live comments.

Run it with `make demo` (or `transom db migrate && transom run --debug` in this folder), then
open http://127.0.0.1:8000/, /docs for the API and /admin (the demo superuser's name and
password are printed when the app starts in debug mode). Every battery extends this one app.
"""

from __future__ import annotations

import datetime
import logging
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import DateTime, ForeignKey, Select, String, Text, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from transom import (
    App,
    EventSourceResponse,
    HTTPException,
    Query,
    RedirectResponse,
    Request,
    Response,
    Router,
    WebSocket,
    render,
    serving,
)
from transom.admin import Admin, ModelAdmin
from transom.auth import Auth, CurrentUser, OptionalUser, User
from transom.cache import Cache, cached
from transom.db import DbSession, DbSessionDep, Model, get_database, to_schema
from transom.forms import BoundForm, Form, Messages, Widget, flash
from transom.health import Health
from transom.realtime import Channels, ChannelsUnavailable
from transom.security import Security
from transom.settings import Settings
from transom.tasks import Tasks, task
from transom.templating import TemplateResponse, Templates

DEMO_ADMIN = ("admin", "transom-demo")


# --- The rules of a post: declared once, seen by the API, the site's form and the admin ---

Slug = Annotated[
    str,
    Field(pattern=r"^[a-z0-9-]+$", max_length=80, description="Lowercase words-with-dashes"),
    Messages(pattern="Use lowercase letters, digits and dashes."),
]
Title = Annotated[str, Field(min_length=1, max_length=200)]


class PostIn(BaseModel):
    """A post as the API takes it, and the rules the admin applies (``Post.__schema__``)."""

    slug: Slug
    title: Title
    body: str = ""


# --- Models: real SQLAlchemy; `transom db makemigrations` wrote migrations/ from them. ---


class Post(Model):
    __app_label__ = "blog"  # permissions are "blog.add_post", "blog.change_post", ...
    __schema__ = PostIn  # the admin validates with it too: it saves nothing the API refuses

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[datetime.date] = mapped_column(default=datetime.date.today)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("transom_auth_user.id"))
    author: Mapped[User | None] = relationship(lazy="joined")

    def __str__(self) -> str:
        return self.title


# --- Comments: written by logged-in readers, shown live on every open page of the post ---

CommentBody = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    Messages(too_short="Write something first.", too_long="At most 2000 characters."),
]


class CommentIn(BaseModel):
    """A comment as the API, the post page's form and the admin take it."""

    body: CommentBody


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class PostComment(Model):
    # Not "Comment": one registry holds every model, and the Conduit example has a Comment.
    __app_label__ = "blog"
    __schema__ = CommentIn

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"))
    post: Mapped[Post] = relationship(lazy="joined")
    author_id: Mapped[int] = mapped_column(ForeignKey("transom_auth_user.id", ondelete="CASCADE"))
    author: Mapped[User] = relationship(lazy="joined")
    # The database holds the same limit as CommentIn: nothing longer gets in by another path.
    body: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    def __str__(self) -> str:
        return self.body if len(self.body) <= 40 else self.body[:39] + "…"


class CommentOut(BaseModel):
    """A comment as the API answers it and as live pages receive it."""

    id: int
    author: str
    body: str
    created_at: datetime.datetime


def comment_out(comment: PostComment) -> CommentOut:
    """A loaded comment (its author joined) as the API shows it."""
    return CommentOut(
        id=comment.id,
        author=comment.author.username,
        body=comment.body,
        created_at=comment.created_at,
    )


# --- API schemas ---


class PostOut(PostIn):
    model_config = ConfigDict(from_attributes=True)

    published: datetime.date


class PostList(BaseModel):
    items: list[PostOut]
    total: int
    offset: int
    limit: int


# --- The app: each battery is one line ---

app = App(Settings(title="Transom blog", version="0.1.0"))
# Sessions, CSRF on every form, CSP with nonces, rate limits: on by default. Behind nginx
# (docs/deployment.md): TRANSOM_TRUSTED_PROXIES=127.0.0.1 lets its X-Forwarded-* headers count.
app.install(Security())
# /healthz and /readyz for the load balancer: the database (and its migrations) reachable.
app.install(Health())
# The blog's pages, from templates/ beside this file.
app.install(Templates())
# /auth/login, /auth/logout, password change and reset; users and permissions.
auth = app.install(Auth())
# /admin for staff users: posts, users and groups. (Alone, it would bring the three above.)
admin = app.install(Admin())
# Live comments. In memory: one process; TRANSOM_CHANNELS_URL=redis://... reaches the pages
# open on every worker and host (docs/realtime.md).
channels = app.install(Channels())
# In memory; TRANSOM_CACHE_URL=redis://... to share it between workers.
cache = app.install(Cache())
# Background tasks, in this process; TRANSOM_TASKS_BROKER_URL=amqp://... (or redis://) sends
# them to `transom worker`, and `transom scheduler` runs the daily digest.
tasks = app.install(Tasks())
api = Router("/api", name="api", tags=["posts"])
logger = logging.getLogger("blog")
#: What the notification task "sent" (a real blog would e-mail its subscribers here).
NOTIFIED: list[str] = []


@task(retries=3, timeout=30)
async def notify_subscribers(slug: str, title: str) -> None:
    """Tell the subscribers about a new post (enqueued when the post's transaction commits)."""
    NOTIFIED.append(slug)
    logger.info("new post %r (%s): subscribers notified", title, slug)


@task(cron="0 6 * * *", tz="UTC")
async def daily_digest() -> int:
    """Every morning at 06:00 UTC: count yesterday's posts for the digest."""
    from transom.db import get_database

    yesterday = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
    async with get_database(app).session() as db:
        count = await db.scalar(select(func.count()).where(Post.published == yesterday)) or 0
    logger.info("daily digest: %d post(s) on %s", count, yesterday)
    return count


@admin.register(Post)
class PostAdmin(ModelAdmin):
    list_display = ["title", "slug", "author", "published"]
    search_fields = ["title", "body"]
    list_filter = ["published", "author"]


@admin.register(PostComment)
class PostCommentAdmin(ModelAdmin):
    list_display = ["body", "post", "author", "created_at"]
    search_fields = ["body"]
    list_filter = ["post", "author"]

    async def after_save(
        self, request: Request, db: DbSession, obj: PostComment, adding: bool
    ) -> None:
        """A comment added here appears on the open pages of its post too, once committed."""
        if adding:
            author = await db.get(User, obj.author_id)
            out = CommentOut(
                id=obj.id,
                author=author.username if author is not None else "",
                body=obj.body,
                created_at=obj.created_at,
            )
            db.on_commit(lambda: publish_comment(obj.post_id, out))


@app.on_startup
async def demo_superuser() -> None:
    """In debug mode, make sure the demo superuser exists and say how to log in."""
    if not app.settings.debug:
        return
    username, password = DEMO_ADMIN
    created = await admin.ensure_superuser(username, password)
    state = "created" if created else "exists"
    # The address `transom run` serves on (`make demo PORT=8080`); the default when run otherwise.
    address = serving.server_url() or "http://127.0.0.1:8000"
    print(f"Admin: {address}/admin  user {username!r} password {password!r} ({state})")


class PostForm(Form):
    """The HTML form for writing a post (the API takes PostIn as JSON)."""

    title: Title
    slug: Slug
    body: Annotated[str, Widget("textarea", rows=8)] = ""


class CommentForm(Form):
    """The comment form under a post."""

    body: Annotated[CommentBody, Widget("textarea", rows=4), Field(title="Your comment")]


def newest_first() -> Select[Post]:
    """Posts, newest first."""
    return select(Post).order_by(Post.published.desc(), Post.id.desc())


#: A post's new comments (by id: a slug can change), documented in /asyncapi.json.
post_comments = channels.declare(
    "post:{post}:comments", CommentOut, summary="New comments of a post, once saved"
)


def comments_channel(post: Post) -> str:
    """The channel a post's new comments are published on."""
    return post_comments.name(post=post.id)


async def comments_of(db: DbSession, post: Post) -> list[PostComment]:
    """A post's comments, oldest first, as a conversation reads (ids only grow: SQLite's
    AUTOINCREMENT, sequences elsewhere)."""
    query = select(PostComment).where(PostComment.post_id == post.id)
    return list(await db.scalars(query.order_by(PostComment.id)))


async def add_comment(db: DbSession, post: Post, user: User, body: str) -> CommentOut:
    """Save a comment, commit it, then tell every open page of the post.

    Published only after the commit: a page never shows a comment that a failed transaction
    took back, and a reader who reloads on seeing it finds it there.
    """
    # By id: ``post`` and ``user`` may come from another session (a WebSocket's handshake).
    comment = await db.save(PostComment(post_id=post.id, author_id=user.id, body=body))
    out = CommentOut(
        id=comment.id, author=user.username, body=comment.body, created_at=comment.created_at
    )
    db.on_commit(lambda: publish_comment(post.id, out))
    await db.commit()  # returns once the comment is published
    return out


async def publish_comment(post_id: int, out: CommentOut) -> None:
    """Send a saved comment to the open pages of its post (an on-commit callback)."""
    try:
        await channels.publish(post_comments.name(post=post_id), out, event="comment")
    except ChannelsUnavailable:
        # The comment is saved (the channels battery logged the outage): answering 503 would
        # make the writer post it again. Open pages show it at their next load.
        logger.warning("comment %d saved but not sent live: channels unavailable", out.id)


async def post_page_response(
    request: Request,
    db: DbSession,
    post: Post,
    user: User | None,
    form: BoundForm[CommentForm] | None = None,
) -> TemplateResponse:
    """The post with its comments, and the comment form for a logged-in reader."""
    if form is None and user is not None:
        form = await CommentForm.from_request(request)
    if form is not None:
        form = await form.with_csrf()
    return render(
        "post.html",
        post=post,
        comments=await comments_of(db, post),
        form=form,
        status_code=form.status_code if form is not None else 200,
    )


@app.get("/", include_in_schema=False)
async def index(db: DbSessionDep) -> TemplateResponse:
    """The list of posts."""
    posts = (await db.scalars(newest_first())).all()
    return render("index.html", posts=posts)


@app.get("/favicon.ico", include_in_schema=False)
async def favicon() -> RedirectResponse:
    """Browsers and feed readers that ask for /favicon.ico get the page's icon."""
    return RedirectResponse(app.static_url("favicon.svg"), 301)


@app.get("/posts/{slug}", name="post", include_in_schema=False)
async def post_page(
    slug: str, request: Request, db: DbSessionDep, user: OptionalUser
) -> TemplateResponse:
    """One post, its comments (new ones appear live), and the comment form."""
    post = await db.get_one_or_404(Post, slug=slug, detail="No such post")
    return await post_page_response(request, db, post, user)


@app.post("/posts/{slug}/comments", name="add_comment", include_in_schema=False)
async def add_comment_form(
    slug: str, request: Request, db: DbSessionDep, user: CurrentUser
) -> Response:
    """Post a comment from the page's form (logged-in readers): the page again with the
    form's errors, or back to the post at the new comment."""
    post = await db.get_one_or_404(Post, slug=slug, detail="No such post")
    form = await CommentForm.from_request(request)
    if not form.is_valid:
        return await post_page_response(request, db, post, user, form)
    comment = await add_comment(db, post, user, form.data.body)
    url = request.url_for("post", slug=post.slug)
    return RedirectResponse(f"{url}#comment-{comment.id}", 303)


async def find_post(slug: str) -> Post:
    """The post, read in a session of its own: a stream that lasts minutes must not hold a
    pool connection (or the request's session) for its whole life."""
    async with get_database(app).session() as db:
        return await db.get_one_or_404(Post, slug=slug, detail="No such post")


@app.get("/posts/{slug}/comments/events", name="comment_events", include_in_schema=False)
async def comment_events(slug: str) -> EventSourceResponse:
    """New comments of a post as server-sent events (``event: comment``, data: CommentOut);
    a reconnecting browser gets what it missed (``Last-Event-ID``)."""
    return channels.sse(comments_channel(await find_post(slug)))


class CommentError(BaseModel):
    """What the comment socket answers a message it can't take."""

    error: str


@app.websocket(
    "/ws/posts/{slug}/comments",
    name="comment_socket",
    receives=CommentIn,
    sends=[CommentOut, CommentError],
)
async def comment_socket(ws: WebSocket, slug: str, user: OptionalUser) -> None:
    """New comments of a post over a WebSocket (each a CommentOut as JSON); a logged-in
    client may also send ``{"body": "..."}`` to comment. A refusal comes back as
    ``{"error": "..."}`` and the connection stays open."""
    post = await find_post(slug)  # an unknown post refuses the handshake with 404
    await ws.accept()

    async def said(raw: str | bytes) -> None:
        if user is None:
            await ws.send_json(CommentError(error="Log in to comment."))
            return
        try:
            data = CommentIn.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            await ws.send_json(CommentError(error=first["msg"]))
            return
        try:
            async with get_database(app).session() as db:
                await add_comment(db, post, user, data.body)
        except IntegrityError:  # the post (or the user) was deleted since the handshake
            await ws.send_json(CommentError(error="This post no longer takes comments."))
        except DBAPIError as exc:  # an outage: say so, keep the connection (and the feed)
            logger.warning("comment over a WebSocket not saved: %s", exc)
            await ws.send_json(CommentError(error="Comments are unavailable; try again shortly."))

    await channels.forward(ws, comments_channel(post), on_message=said)


@app.route("/write", methods=["GET", "POST"], name="new_post", include_in_schema=False)
async def new_post(request: Request, db: DbSessionDep, user: CurrentUser) -> Response:
    """Write a post (logged-in users): the form comes back with its errors until it is valid."""
    form = await PostForm.from_request(request)
    if form.is_valid and await db.scalar(select(Post.id).where(Post.slug == form.data.slug)):
        form.add_error("slug", "A post with this slug exists.")
    if form.is_valid:
        post = await db.save(Post(**form.data.model_dump(), author=user))
        await notify_subscribers.enqueue_on_commit(db, post.slug, post.title)
        await cache.delete_tags("posts")
        await flash(request, f"Published “{post.title}”.")
        return RedirectResponse(request.url_for("post", slug=post.slug), 303)
    return render("new.html", form=await form.with_csrf(), status_code=form.status_code)


@app.get("/dashboard", name="dashboard", include_in_schema=False)
async def dashboard(user: CurrentUser, db: DbSessionDep) -> TemplateResponse:
    """Only logged-in users see this page (others are sent to the login page)."""
    mine = (await db.scalars(newest_first().where(Post.author_id == user.id))).all()
    return render("dashboard.html", user=user, posts=mine)


@api.get("/posts")
@cached(ttl=60, tags=("posts",))  # anonymous readers share it; a new post invalidates it
async def list_posts(
    db: DbSessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PostList:
    """List posts, newest first."""
    posts = (await db.scalars(newest_first().offset(offset).limit(limit))).all()
    total = await db.scalar(select(func.count()).select_from(Post)) or 0
    items = [to_schema(p, PostOut) for p in posts]
    return PostList(items=items, total=total, offset=offset, limit=limit)


@api.get("/posts/{slug}")
async def get_post(slug: str, db: DbSessionDep) -> PostOut:
    """Fetch one post."""
    return to_schema(await db.get_one_or_404(Post, slug=slug, detail="No such post"), PostOut)


@api.post("/posts", status_code=201)
async def create_post(data: PostIn, db: DbSessionDep, user: CurrentUser) -> PostOut:
    """Publish a post (a unique slug: a taken one answers 409 naming the field)."""
    post = to_schema(await db.save(Post(**data.model_dump(), author=user)), PostOut)
    await notify_subscribers.enqueue_on_commit(db, post.slug, post.title)  # if the commit happens
    await cache.delete_tags("posts")
    return post


@api.delete("/posts/{slug}", status_code=204)
async def delete_post(slug: str, db: DbSessionDep, user: CurrentUser) -> None:
    """Delete a post (its author, or a user with the blog.delete_post permission)."""
    post = await db.get_one_or_404(Post, slug=slug, detail="No such post")
    if post.author_id != user.id and not await user.has_perm("blog.delete_post", db):
        raise HTTPException(403, "Only the author may delete this post")
    await db.delete(post)
    await cache.delete_tags("posts")


@api.get("/posts/{slug}/comments", tags=["comments"])
async def list_comments(slug: str, db: DbSessionDep) -> list[CommentOut]:
    """A post's comments, oldest first."""
    post = await db.get_one_or_404(Post, slug=slug, detail="No such post")
    return [comment_out(c) for c in await comments_of(db, post)]


@api.post("/posts/{slug}/comments", status_code=201, tags=["comments"])
async def create_comment(
    slug: str, data: CommentIn, db: DbSessionDep, user: CurrentUser
) -> CommentOut:
    """Comment on a post (logged-in users); every open page of the post shows it at once."""
    post = await db.get_one_or_404(Post, slug=slug, detail="No such post")
    return await add_comment(db, post, user, data.body)


app.include_router(api)

if __name__ == "__main__":
    app.run()
