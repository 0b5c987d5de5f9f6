"""The example blog: HTML pages, a typed JSON API, users, and an admin.

Run it with `make demo` (or `transom db migrate && transom run --debug` in this folder), then
open http://127.0.0.1:8000/, /docs for the API and /admin (the demo superuser's name and
password are printed when the app starts in debug mode). Every battery extends this one app.
"""

from __future__ import annotations

import datetime
import logging
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, Select, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from transom import (
    App,
    HTTPException,
    Query,
    RedirectResponse,
    Request,
    Response,
    Router,
    render,
    serving,
)
from transom.admin import Admin, ModelAdmin
from transom.auth import Auth, CurrentUser, User
from transom.cache import Cache, cached
from transom.db import DbSessionDep, Model, to_schema
from transom.forms import Form, Widget, flash
from transom.health import Health
from transom.security import Security
from transom.settings import Settings
from transom.tasks import Tasks, task
from transom.templating import TemplateResponse, Templates

DEMO_ADMIN = ("admin", "transom-demo")


# --- Models: real SQLAlchemy; `transom db makemigrations` wrote migrations/ from them. ---


class Post(Model):
    __app_label__ = "blog"  # permissions are "blog.add_post", "blog.change_post", ...

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[datetime.date] = mapped_column(default=datetime.date.today)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("transom_auth_user.id"))
    author: Mapped[User | None] = relationship(lazy="joined")

    def __str__(self) -> str:
        return self.title


# --- API schemas ---


class PostIn(BaseModel):
    slug: str = Field(pattern=r"^[a-z0-9-]+$", max_length=80)
    title: str = Field(min_length=1, max_length=200)
    body: str = ""


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

    title: str = Field(min_length=1, max_length=200)
    slug: str = Field(
        pattern=r"^[a-z0-9-]+$", max_length=80, description="Lowercase words-with-dashes"
    )
    body: Annotated[str, Widget("textarea", rows=8)] = ""


def newest_first() -> Select[Post]:
    """Posts, newest first."""
    return select(Post).order_by(Post.published.desc(), Post.id.desc())


@app.get("/", include_in_schema=False)
async def index(db: DbSessionDep) -> TemplateResponse:
    """The list of posts."""
    posts = (await db.scalars(newest_first())).all()
    return render("index.html", posts=posts)


@app.get("/posts/{slug}", name="post", include_in_schema=False)
async def post_page(slug: str, db: DbSessionDep) -> TemplateResponse:
    """One post."""
    post = await db.get_one_or_404(Post, slug=slug, detail="No such post")
    return render("post.html", post=post)


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


app.include_router(api)

if __name__ == "__main__":
    app.run()
