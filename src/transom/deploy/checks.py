"""The deployment checklist behind ``transom check --deploy``: what is unsafe or will break
in production, each with the fix.

Errors make the command exit non-zero (a deploy script stops there); warnings are worth a
look but may be deliberate (a JSON API without sessions has no cookies to secure).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["Context", "Problem", "deploy_checks"]

Level = Literal["error", "warning"]
#: Django's bar for a secret key, which no placeholder passes.
MIN_KEY_LENGTH = 50
MIN_KEY_CHARACTERS = 5
# Keys that start like these were typed by a person (random keys almost never do).
_PLACEHOLDERS = (
    "change",
    "secret",
    "demo",
    "insecure",
    "django-insecure",
    "example",
    "test",
    "dev",
)
_KEY_FIX = (
    "set TRANSOM_SECRET_KEY to a long random value, e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`, kept out of the code"
)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One finding: ``id`` (stable, ``deploy.debug``), its level, what is wrong, the fix."""

    id: str
    level: Level
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.level.upper()} {self.id}: {self.message}\n    fix: {self.fix}"


@dataclasses.dataclass
class Context:
    """What the checks know about the deployment.

    Attributes:
        app: The app, built.
        workers: Worker processes per host (``transom run --workers``).
        hosts: Hosts (machines, containers) running the app against the same database.
    """

    app: App
    workers: int = 1
    hosts: int = 1

    @property
    def processes(self) -> int:
        return self.workers * self.hosts


Check = Callable[[Context], Iterator[Problem]]


def _settings(ctx: Context) -> Iterator[Problem]:
    settings = ctx.app.settings
    if settings.debug:
        yield Problem(
            "deploy.debug",
            "error",
            "debug mode is on: tracebacks with local variables are shown to anyone, and "
            "templates and static files are re-read on each request",
            "set TRANSOM_DEBUG=0 (or leave it unset)",
        )
    key = settings.secret_key.get_secret_value() if settings.secret_key is not None else ""
    if not key:
        yield Problem(
            "deploy.secret_key.missing",
            "error",
            "no secret key: sessions, CSRF tokens and signed links can't be signed",
            _KEY_FIX,
        )
    elif (
        len(key) < MIN_KEY_LENGTH
        or len(set(key)) < MIN_KEY_CHARACTERS
        or key.lower().startswith(_PLACEHOLDERS)
    ):
        yield Problem(
            "deploy.secret_key.weak",
            "error",
            f"the secret key is weak (fewer than {MIN_KEY_LENGTH} characters, fewer than "
            f"{MIN_KEY_CHARACTERS} different ones, or it starts like a placeholder): "
            "signed cookies can be forged by whoever guesses it",
            _KEY_FIX,
        )
    hosts = list(settings.allowed_hosts)
    if "*" in hosts:
        yield Problem(
            "deploy.allowed_hosts.any",
            "error",
            "allowed_hosts has '*': the app answers for any Host header, so links in "
            "password-reset mails and redirects can be pointed at an attacker's site",
            "set TRANSOM_ALLOWED_HOSTS to the site's names (example.com,.example.com)",
        )
    elif all(h in ("localhost", "127.0.0.1", "[::1]") for h in hosts):
        yield Problem(
            "deploy.allowed_hosts.local",
            "warning",
            "allowed_hosts lists only this machine's names: every other Host is refused (400)",
            "set TRANSOM_ALLOWED_HOSTS to the names the site is reached by",
        )


def _security(ctx: Context) -> Iterator[Problem]:
    from transom.security import Security
    from transom.security.ratelimit import MemoryRateLimitBackend

    security = ctx.app.batteries.find(Security)
    if security is None:
        yield Problem(
            "deploy.security.missing",
            "warning",
            "the security battery is not installed: no CSRF protection, security headers "
            "(CSP, HSTS) or trusted-proxy handling",
            "app.install(Security(SecurityConfig(...))), unless this is a token-only API",
        )
        return
    networks = []
    for proxy in security.trusted_proxies:
        try:
            networks.append(ipaddress.ip_network(proxy, strict=False))
        except ValueError:
            continue
    if any(net.prefixlen == 0 for net in networks):
        yield Problem(
            "deploy.proxies.everyone",
            "error",
            "trusted_proxies trusts every address: any client can forge its IP (rate limits, "
            "logs), the scheme (Secure cookies) and the Host",
            "list only the proxies' addresses in SecurityConfig(trusted_proxies=[...])",
        )
    headers = security.headers
    if headers is None or headers.hsts_max_age <= 0:
        yield Problem(
            "deploy.hsts.off",
            "warning",
            "HSTS is off: a visitor's first plain-HTTP request can be intercepted",
            "keep HeadersConfig(hsts_max_age=31536000) (the default) once the site is HTTPS",
        )
    elif headers.hsts_max_age < 365 * 24 * 3600:
        yield Problem(
            "deploy.hsts.short",
            "warning",
            f"HSTS lasts {headers.hsts_max_age} s, less than a year",
            "HeadersConfig(hsts_max_age=31536000)",
        )
    sessions = security.sessions
    if sessions is not None and sessions.secure is not True and not security.trusted_proxies:
        yield Problem(
            "deploy.cookies.insecure",
            "warning",
            "behind a proxy that terminates TLS every request arrives as plain HTTP: session "
            "cookies go without Secure (and __Host-) and HSTS is never sent",
            "TRANSOM_TRUSTED_PROXIES=<proxy address> (or SecurityConfig(trusted_proxies=...)) "
            "so X-Forwarded-Proto counts, or SessionConfig(secure=True) when the app is only "
            "reached over HTTPS",
        )
    if ctx.processes > 1 and isinstance(security.rate_limit_backend, MemoryRateLimitBackend):
        yield Problem(
            "deploy.ratelimit.memory",
            "warning",
            f"rate limits count in each process's memory: with {ctx.processes} processes a "
            f"limit lets {ctx.processes} times as many requests through",
            "TRANSOM_RATE_LIMIT_URL=redis://... (or SecurityConfig(rate_limit_backend="
            "RedisRateLimitBackend(...))) to share one count",
        )


def _cache(ctx: Context) -> Iterator[Problem]:
    cache = ctx.app.extensions.get("transom.cache")
    if cache is not None and ctx.processes > 1 and cache.config.url.startswith("memory:"):
        yield Problem(
            "deploy.cache.memory",
            "warning",
            f"the cache lives in each process's memory: {ctx.processes} processes hold "
            f"{ctx.processes} copies, and delete/delete_tags reach only one of them",
            "TRANSOM_CACHE_URL=redis://... to share one cache",
        )


def _database(ctx: Context) -> Iterator[Problem]:
    database = ctx.app.extensions.get("transom.db")
    if database is None:
        return
    config = database.config
    if config.backend == "sqlite":
        if ctx.hosts > 1:
            yield Problem(
                "deploy.db.sqlite_hosts",
                "error",
                "an SQLite file can't be shared by several hosts",
                "DATABASE_URL=postgresql://... (or mysql://...)",
            )
        elif ctx.workers > 1:
            yield Problem(
                "deploy.db.sqlite_workers",
                "warning",
                f"SQLite with {ctx.workers} workers: writes wait for each other (one at a time)",
                "fine for a small site; DATABASE_URL=postgresql://... beyond that",
            )
        yield from _migrations(database)
        return
    per_process = config.pool_size + config.max_overflow
    needed = per_process * ctx.processes
    try:
        limit = _max_connections(database)
    except Exception as exc:
        yield Problem(
            "deploy.db.unreachable",
            "error",
            f"the database can't be reached to check it ({type(exc).__name__}: {exc})",
            "check DATABASE_URL and that the server accepts connections from this host",
        )
        return
    if needed > limit:
        yield Problem(
            "deploy.db.pool",
            "error",
            f"{ctx.processes} processes x (pool_size {config.pool_size} + max_overflow "
            f"{config.max_overflow}) = {needed} connections, but the server accepts "
            f"{limit} (after its reserved ones): under load requests fail with 503",
            f"lower TRANSOM_DATABASE_POOL_SIZE/MAX_OVERFLOW to at most "
            f"{max(1, limit // ctx.processes)} per process, raise the server's "
            "max_connections, or put PgBouncer in front",
        )
    yield from _migrations(database)


def _max_connections(database: Any) -> int:
    """The connections the primary server accepts for ordinary users."""
    from sqlalchemy import text

    engine = database.sync_engine
    try:
        with engine.connect() as connection:
            if database.config.backend == "postgresql":
                total = int(connection.execute(text("SHOW max_connections")).scalar_one())
                reserved = connection.execute(text("SHOW superuser_reserved_connections"))
                return total - int(reserved.scalar_one())
            return int(connection.execute(text("SELECT @@max_connections")).scalar_one())
    finally:
        engine.dispose()


def _migrations(database: Any) -> Iterator[Problem]:
    from transom.db.migrations.status import migration_status

    try:
        problem = migration_status(database)
    except Exception as exc:
        problem = f"the migrations could not be checked ({type(exc).__name__}: {exc})"
    if problem:
        yield Problem("deploy.db.migrations", "error", problem, "transom db migrate")


def _static(ctx: Context) -> Iterator[Problem]:
    from transom.staticfiles import MANIFEST_NAME

    app = ctx.app
    settings = app.settings
    if not settings.static_url:
        return
    sources = [app.root_path / settings.static_dir]
    sources += [Path(p) for p in app.extensions.get("transom.static.sources", [])]
    files = [f for folder in sources if folder.is_dir() for f in folder.rglob("*") if f.is_file()]
    if not files:
        return
    manifest = app.root_path / settings.static_root / MANIFEST_NAME
    if not manifest.exists():
        yield Problem(
            "deploy.static.not_collected",
            "error",
            f"static files were not collected into {settings.static_root}/: they are served "
            "without fingerprinted names (no long-lived caching) and the proxy has none to serve",
            "transom collectstatic (at each deploy, before the app starts)",
        )
        return
    built = manifest.stat().st_mtime
    newer = [f for f in files if f.stat().st_mtime > built]
    if newer:
        yield Problem(
            "deploy.static.stale",
            "warning",
            f"{len(newer)} static files changed since the last collectstatic ({newer[0].name}...)",
            "transom collectstatic",
        )


CHECKS: tuple[Check, ...] = (_settings, _security, _cache, _database, _static)


def deploy_checks(app: App, *, workers: int = 1, hosts: int = 1) -> list[Problem]:
    """Run the deployment checklist on ``app`` (built first); errors first."""
    app.build()
    ctx = Context(app, workers=workers, hosts=hosts)
    found = [problem for check in CHECKS for problem in check(ctx)]
    return sorted(found, key=lambda p: p.level != "error")
