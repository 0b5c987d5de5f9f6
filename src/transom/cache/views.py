"""Cached views, ``Cache-Control`` and conditional GET (``ETag``, ``304 Not Modified``).

``@cached`` stores whole responses. The lookup runs once the route is known (a
``before_request`` hook), the decision to store runs on the headers the client would receive
(the app's last response headers hook, added when the app is built), so a cookie set by
the security battery on the way out is seen, and such a response is never stored.

Who a page is for:

* a request with an ``Authorization`` header or a cookie (other than ``ignore_cookies``) may
  get a page made for its user: a plain ``@cached`` view neither serves it from the cache nor
  stores its answer;
* ``@cached(vary_on_user=True)`` caches such pages too, keyed on the user's identity (the
  auth battery's user when it is installed, else a digest of the credentials); an anonymous
  request that carries credentials (a session without a user) is still not cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson

from transom._types import Scope, Send
from transom.cache.backends import match_any
from transom.cache.config import Identity
from transom.requests import Request
from transom.responses import Response

if TYPE_CHECKING:
    from transom.app import App
    from transom.cache.core import Cache

__all__ = [
    "cache_control",
    "cached",
    "etag_for",
    "is_not_modified",
    "not_modified",
]

logger = logging.getLogger("transom.cache")
F = TypeVar("F", bound=Callable[..., Any])
_CACHED_ATTR: Final = "__transom_cached__"
_CONTROL_ATTR: Final = "__transom_cache_control__"
#: Scope key: what the cache decided for this request (a hit, or an entry to store).
_STATE: Final = "transom.cache.view"
_HIT: Final = "hit"
_SAFE_METHODS = frozenset({"GET", "HEAD"})
# Response headers a cached copy must not repeat to someone else.
RawHeaders = list[tuple[bytes, bytes]]
_NEVER_STORED = frozenset({b"set-cookie", b"date", b"content-length", b"content-type"})
# What a 304 repeats of the 200 (RFC 9110 §15.4.5): the validators and the caching headers.
_KEPT_BY_304 = frozenset(
    {b"etag", b"cache-control", b"vary", b"expires", b"last-modified", b"content-location"}
)
# Longest path + query keyed as they are in memory; longer ones are digested (bounded keys).
_SHORT_KEY = 512


@dataclasses.dataclass(frozen=True, slots=True)
class _Policy:
    ttl: float | None
    vary: tuple[str, ...]
    vary_on_user: bool | Identity
    tags: tuple[str, ...]


@dataclasses.dataclass(slots=True)
class _Pending:
    key: str
    entry: bytes | _Page
    ttl: float | None
    tags: tuple[str, ...]
    policy: _Policy
    body: bytes


class _Page:
    """A stored ``200``, ready to send: status, content type, its own headers (names in lower
    case, never the ones of ``_NEVER_STORED``) and body.

    The memory backend keeps this very object and every hit shares it: nothing here is
    mutated after it is built, but ``memo``. Each hit gets a fresh :class:`_PageResponse`.
    """

    __slots__ = ("body", "content_type", "etag", "memo", "raw", "size", "status")

    def __init__(self, status: int, content_type: str | None, raw: RawHeaders, body: bytes) -> None:
        self.status = status
        self.content_type = content_type
        self.raw = raw
        self.body = body
        etag = next((v for k, v in raw if k == b"etag"), None)
        self.etag = etag.decode("latin-1") if etag is not None else None
        # What it costs the memory bound (headers, body, the objects around them).
        self.size = len(body) + sum(len(k) + len(v) for k, v in raw) + 200
        #: (the app's header block, the complete header list sent with it): the last block
        #: seen, by identity (the app passes the same list to every request unless a hook
        #: makes a new one), so a hit skips merging the headers again.
        self.memo: tuple[RawHeaders, RawHeaders] | None = None

    def not_modified(self) -> Response:
        result = Response(b"", 304)
        result.raw_headers.extend(h for h in self.raw if h[0] in _KEPT_BY_304)
        return result


class _PageResponse(Response):
    """What a hit answers: a plain :class:`Response` of the page's status, headers and body,
    sent from the page's pre-merged header list while nothing changed it on the way out
    (an after-request hook that edits headers, the body or sets a cookie gets the general path).
    """

    __slots__ = ("_page",)

    def __init__(self, page: _Page) -> None:
        Response.__init__(self, page.body, page.status, None, page.content_type)  # no super(): hot
        self.content_type = page.content_type  # as stored (the constructor may add a charset)
        self.raw_headers.extend(page.raw)  # a list of its own: editing it never reaches the page
        self._page: _Page | None = page

    def set_cookie(self, key: str, value: str = "", **options: Any) -> None:
        self._page = None  # cookies make the header list per request
        super().set_cookie(key, value, **options)

    async def send_to(self, scope: Scope, send: Send, extra: RawHeaders = ()) -> None:  # type: ignore[assignment]
        page = self._page
        if (
            page is None
            or self.body is not page.body
            or self.status_code != page.status
            or self.content_type != page.content_type
            or self.raw_headers != page.raw
        ):
            await super().send_to(scope, send, extra)
            return
        memo = page.memo
        if memo is not None and memo[0] is extra:
            head = memo[1]
        else:
            head = self.header_block(scope, extra, len(page.body))
            page.memo = (extra, head)
        await send(
            {
                "type": "http.response.start",
                "status": page.status,
                # A copy: a middleware may edit the message's list in place.
                "headers": head.copy(),
            }
        )
        body = b"" if scope.get("method") == "HEAD" else page.body
        await send({"type": "http.response.body", "body": body})


def _answer(request: Request, page: _Page) -> Response:
    """The hit's response, or a ``304`` when the client's ``If-None-Match`` matches."""
    if page.etag is not None and is_not_modified(request, etag=page.etag):
        return page.not_modified()
    return _PageResponse(page)


def cached(
    ttl: float | None = None,
    *,
    vary: Iterable[str] = (),
    vary_on_user: bool | Identity = False,
    tags: Iterable[str] = (),
) -> Callable[[F], F]:
    """Cache the whole response of a GET/HEAD handler for ``ttl`` seconds.

    The key is the host, path and query string, the request headers named in ``vary``
    and, with ``vary_on_user``, the user. Only ``200`` responses are stored, never one that
    sets a cookie, says ``no-store``/``no-cache``/``private`` or varies on a header not
    in ``vary``. ``tags`` invalidate it with ``cache.delete_tags(...)``.

    Args:
        ttl: Seconds (default: the cache's ``default_ttl``).
        vary: Request headers the page depends on (``"Accept-Language"``).
        vary_on_user: Cache pages of logged-in users too, one copy per user; or an
            ``async (request) -> str | None`` that says who the request is.
        tags: Tags of the stored responses.

    Example:
        >>> @cached(ttl=60, tags=("posts",))  # doctest: +SKIP
        ... @app.get("/posts")
        ... async def posts(db: DbSessionDep) -> list[PostOut]: ...
    """
    policy = _Policy(ttl, tuple(h.lower() for h in vary), vary_on_user, tuple(tags))

    def decorate(func: F) -> F:
        setattr(func, _CACHED_ATTR, policy)
        return func

    return decorate


def cache_control(
    *,
    max_age: int | None = None,
    s_maxage: int | None = None,
    public: bool = False,
    private: bool = False,
    no_cache: bool = False,
    no_store: bool = False,
    must_revalidate: bool = False,
    immutable: bool = False,
    stale_while_revalidate: int | None = None,
    etag: bool = True,
) -> Callable[[F], F]:
    """Send ``Cache-Control`` (unless the handler set its own) and answer conditional GETs.

    With ``etag`` (the default), a 200 response to GET/HEAD gets an ``ETag`` (a digest of
    its body, unless it has one) and a request whose ``If-None-Match`` matches gets ``304``.

    Example:
        >>> @cache_control(max_age=3600, public=True)  # doctest: +SKIP
        ... @app.get("/logo-info")
        ... async def logo_info() -> dict[str, str]: ...
    """
    if public and private:
        raise ValueError("a response is public or private, not both")
    parts = [
        *(["public"] if public else []),
        *(["private"] if private else []),
        *(["no-cache"] if no_cache else []),
        *(["no-store"] if no_store else []),
        *(["must-revalidate"] if must_revalidate else []),
        *(["immutable"] if immutable else []),
        *([f"max-age={max_age}"] if max_age is not None else []),
        *([f"s-maxage={s_maxage}"] if s_maxage is not None else []),
        *(
            [f"stale-while-revalidate={stale_while_revalidate}"]
            if stale_while_revalidate is not None
            else []
        ),
    ]
    control = (", ".join(parts), etag)

    def decorate(func: F) -> F:
        setattr(func, _CONTROL_ATTR, control)
        return func

    return decorate


# -- conditional GET -----------------------------------------------------------------------------


def etag_for(body: bytes) -> str:
    """A strong ``ETag`` for ``body``: ``"<digest>"``."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def is_not_modified(
    request: Request, *, etag: str | None = None, last_modified: datetime | None = None
) -> bool:
    """Whether the client's copy is current (RFC 9110 §13): answer ``not_modified(...)``.

    ``If-None-Match`` wins over ``If-Modified-Since``; only GET and HEAD are considered.
    """
    if request.method not in _SAFE_METHODS:
        return False
    header = request.headers.get("if-none-match")
    if header is not None:
        if etag is None:
            return False
        if header.strip() == "*":
            return True
        wanted = etag.removeprefix("W/")
        return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))
    since = request.headers.get("if-modified-since")
    if since is not None and last_modified is not None:
        try:
            client = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False  # a malformed date is ignored, as the RFC says
        if client.tzinfo is None or last_modified.tzinfo is None:
            return False
        return last_modified.replace(microsecond=0) <= client
    return False


def not_modified(
    *, etag: str | None = None, last_modified: datetime | None = None, headers: Any = None
) -> Response:
    """A ``304 Not Modified`` response carrying the validators."""
    response = Response(b"", 304, headers)
    if etag is not None:
        response.headers["ETag"] = etag
    if last_modified is not None:
        response.headers["Last-Modified"] = format_datetime(last_modified, usegmt=True)
    return response


# -- the hooks -----------------------------------------------------------------------------------


def _credentials(request: Request, ignore: list[str]) -> list[str]:
    # Most cacheable requests carry neither header: look before parsing anything.
    if not any(k in (b"cookie", b"authorization") for k, _ in request.scope["headers"]):
        return []
    found = [f"{name}={value}" for name, value in sorted(request.cookies.items())]
    if ignore:
        found = [c for c in found if not match_any(c.partition("=")[0], ignore)]
    authorization = request.headers.get("authorization")
    if authorization is not None:
        found.append(f"authorization:{authorization}")
    return found


async def _auth_identity(request: Request) -> str | None:
    # The auth battery's user, resolved once per request (the handler reuses it). Isolated
    # here: the one place the cache knows about auth and the database.
    from transom.auth import get_current_user
    from transom.db import get_database

    async with get_database(request.app).session() as db:
        user = await get_current_user(request, db)
        await db.commit()
    return None if user is None else f"user:{user.id}"


async def _identity(
    cache: Cache, request: Request, policy: _Policy, creds: list[str]
) -> str | None:
    resolver = policy.vary_on_user if callable(policy.vary_on_user) else cache.config.identity
    if resolver is not None:
        return await resolver(request)
    if request.app is not None and "transom.auth" in request.app.extensions:
        return await _auth_identity(request)
    if not creds:
        return None
    # No notion of users: the credentials themselves are the identity.
    return "cred:" + hashlib.sha256("\n".join(creds).encode()).hexdigest()


def _view_key(request: Request, policy: _Policy, who: str) -> str:
    scope = request.scope
    host = b""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    parts = [
        scope.get("scheme", "http").encode(),
        host,
        (scope.get("root_path", "") + scope["path"]).encode("utf-8", "surrogatepass"),
        scope.get("query_string", b""),
        who.encode("utf-8", "surrogatepass"),
    ]
    for header in policy.vary:
        parts.append(header.encode("latin-1"))
        parts.append(",".join(request.headers.getlist(header)).encode("utf-8", "surrogatepass"))
    digest = hashlib.sha256()
    for part in parts:
        # Each part after its length: no two lists of parts hash the same bytes, whatever
        # they hold (a path may hold a newline: %0A).
        digest.update(b"%d:" % len(part))
        digest.update(part)
    return "view:" + digest.hexdigest()


def _local_key(request: Request, policy: _Policy, host: bytes) -> str:
    """The key of an anonymous page in memory: scheme, host, path and query as they are, no
    digest (``_view_key`` for long URLs and ``vary`` headers).

    Injective: the four parts are joined by newlines, and a key whose parts hold one
    themselves (exactly three newlines, or a digest) can't be taken for another's. It never
    meets a digest key (64 hex digits, no newline)."""
    scope = request.scope
    path: str = scope["path"]
    root = scope.get("root_path")
    if root:
        path = root + path
    query: bytes = scope.get("query_string", b"")
    if not policy.vary and len(path) + len(query) + len(host) <= _SHORT_KEY:
        key = f"view:{scope.get('scheme', 'http')}\n{host.decode('latin-1')}\n{path}\n" + (
            query.decode("latin-1") if query else ""
        )
        if key.count("\n") == 3:
            return key
    return _view_key(request, policy, "")


def _encode_response(response: Response, headers: list[tuple[bytes, bytes]]) -> bytes:
    head = orjson.dumps(
        {
            "s": response.status_code,
            "c": response.content_type,
            "h": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers],
        }
    )
    return head + b"\n" + response.body


def _decode_page(entry: bytes) -> _Page | None:
    head, _, body = entry.partition(b"\n")
    try:
        meta = orjson.loads(head)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in meta["h"]]
        page = _Page(int(meta["s"]), meta["c"], raw, body)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # Not what this code wrote (another version of the app, a hand edit): a miss.
        logger.warning("Unreadable cached view (%s): treated as a miss", exc)
        return None
    if page.content_type is not None and not isinstance(page.content_type, str):
        return None
    return page


def _directives(value: str | None) -> set[str]:
    if not value:
        return set()
    return {part.strip().partition("=")[0].lower() for part in value.split(",")}


def _storable(response: Response, policy: _Policy) -> bool:
    if response.status_code != 200 or response.deferred:
        return False
    if type(response).send_to is not Response.send_to:
        return False  # streamed or a file: the body is not in memory
    headers = response.headers
    if "set-cookie" in headers:
        return False
    control = _directives(headers.get("cache-control"))
    if control & {"no-store", "no-cache"}:
        return False
    if "private" in control and not policy.vary_on_user:
        return False
    return _vary_ok(headers.getlist("vary"), policy)


def _vary_ok(values: list[str], policy: _Policy) -> bool:
    for value in values:
        for name in value.split(","):
            name = name.strip().lower()
            if name == "*":
                return False
            # Cookie/Authorization: requests with credentials are skipped or keyed on the user.
            if name and name not in policy.vary and name not in ("cookie", "authorization"):
                return False
    return True


def install_views(cache: Cache, app: App) -> None:
    """Register the hooks behind ``@cached`` and ``@cache_control`` on ``app``."""
    ignore = cache.config.ignore_cookies

    local = cache.stores_objects

    def lookup(request: Request) -> Response | Awaitable[Response | None] | None:
        # A plain function: a route without @cached costs no coroutine, and neither does a
        # hit in memory on a page for everyone (no vary_on_user), the common case.
        route = request.route
        policy: _Policy | None = getattr(route.endpoint, _CACHED_ATTR, None) if route else None
        scope = request.scope
        if policy is None or scope["method"] not in _SAFE_METHODS:
            return None
        if policy.vary_on_user or not local:
            return serve(request, policy)
        host: bytes | None = None
        credentials = conditional = False
        for name, value in scope["headers"]:  # one pass for the three questions
            if name == b"host":
                if host is None:
                    host = value
            elif name == b"cookie" or name == b"authorization":
                credentials = True
            elif name == b"if-none-match":
                conditional = True
        if credentials and _credentials(request, ignore):
            return None  # may be someone's own page: neither served from nor stored in the cache
        key = _local_key(request, policy, host or b"")
        page = cache.get_object(key)
        if type(page) is not _Page:
            scope[_STATE] = (policy, key)
            return None
        scope[_STATE] = _HIT
        return _answer(request, page) if conditional else _PageResponse(page)

    async def serve(request: Request, policy: _Policy) -> Response | None:
        creds = _credentials(request, ignore)
        if creds and not policy.vary_on_user:
            return None  # may be someone's own page: neither served from nor stored in the cache
        who = ""
        if policy.vary_on_user:
            identity = await _identity(cache, request, policy, creds)
            if identity is None and creds:
                return None  # a session without a user: its page may still be its own
            who = identity or ""
        key = _view_key(request, policy, who)
        page: Any
        if local:
            page = cache.get_object(key)
        else:
            entry = await cache.get(key)
            page = _decode_page(entry) if isinstance(entry, bytes) else None
        if type(page) is not _Page:
            request.scope[_STATE] = (policy, key)
            return None
        request.scope[_STATE] = _HIT
        return _answer(request, page)

    def finish(request: Request, response: Response) -> Response | None:
        state = request.scope.get(_STATE)
        if state is _HIT:
            return None  # served from the cache: its headers and validators are the stored ones
        route = request.route
        endpoint = route.endpoint if route is not None else None
        control: tuple[str, bool] | None = getattr(endpoint, _CONTROL_ATTR, None)
        if control is None and state is None:
            return None  # neither @cached nor @cache_control: nothing to do
        if control is not None:
            _apply_control(response, control[0])
        if isinstance(state, tuple):
            policy, key = state
            if policy.vary_on_user and "cache-control" not in response.headers:
                # One user's page: browsers may keep it, shared caches (proxies) must not.
                response.headers["Cache-Control"] = "private"
            if _storable(response, policy):
                body = bytes(response.body)  # bytes are immutable: the page can share them
                etag = response.headers.setdefault("ETag", etag_for(body))
                stored = [h for h in response.raw_headers if h[0] not in _NEVER_STORED]
                # In memory the finished page itself; elsewhere its serialised form.
                entry = (
                    _Page(response.status_code, response.content_type, stored, body)
                    if local
                    else _encode_response(response, stored)
                )
                request.scope[_STATE] = _Pending(key, entry, policy.ttl, policy.tags, policy, body)
                if is_not_modified(request, etag=etag):
                    return _not_modified_from(response)
            return None
        if control is not None and control[1]:
            return _conditional(request, response)
        return None

    def store(
        request: Request, response: Response, headers: RawHeaders
    ) -> RawHeaders | Awaitable[RawHeaders]:
        pending = request.scope.get(_STATE)
        if not isinstance(pending, _Pending):
            return headers  # not a @cached miss: nothing to store (every other request)
        # What the client gets: the response's own headers, the block, its cookies.
        final = response.header_block(request.scope, headers)
        if not _final_ok(response.status_code, final, pending):
            return headers
        request.scope[_STATE] = None  # once (the hooks run again on an error answer)
        return _store(cache, pending, headers)

    app.before_request(lookup)
    app.after_request(finish)
    # The store decision reads the headers the client gets, so its hook must run after every
    # other one (the security battery adds Set-Cookie on the way out): add it when the app is
    # built, after every battery has added its own. A hook, not a middleware: the app keeps its
    # no-middleware path, and a request to a route without @cached pays one dict look-up.
    registered: list[bool] = []

    def register() -> None:
        if not registered:  # the checks run again whenever the app is built again
            registered.append(True)
            app.response_headers_hook(store)

    app.add_check(register)


async def _store(cache: Cache, pending: _Pending, headers: RawHeaders) -> RawHeaders:
    entry = pending.entry
    if isinstance(entry, _Page):
        await cache.set_object(pending.key, entry, entry.size, pending.ttl, tags=pending.tags)
    else:
        await cache.set(pending.key, entry, pending.ttl, tags=pending.tags)
    return headers


def _apply_control(response: Response, value: str) -> None:
    if value and "cache-control" not in response.headers:
        response.headers["Cache-Control"] = value


def _conditional(request: Request, response: Response) -> Response | None:
    if request.method not in _SAFE_METHODS or response.status_code != 200:
        return None
    if type(response).send_to is not Response.send_to:
        return None
    etag = response.headers.setdefault("ETag", etag_for(response.body))
    if is_not_modified(request, etag=etag):
        return _not_modified_from(response)
    return None


def _not_modified_from(response: Response) -> Response:
    result = Response(b"", 304)
    result.raw_headers.extend(h for h in response.raw_headers if h[0] in _KEPT_BY_304)
    return result


def _final_ok(status: int, headers: list[tuple[bytes, bytes]], pending: _Pending) -> bool:
    if status not in (200, 304):
        return False
    varies: list[str] = []
    for name, value in headers:
        if name == b"set-cookie":
            return False
        if name == b"vary":
            varies.append(value.decode("latin-1"))
        if name == b"cache-control":
            control = _directives(value.decode("latin-1"))
            if "no-store" in control or ("private" in control and not pending.policy.vary_on_user):
                return False
        if name in (b"content-security-policy", b"content-security-policy-report-only"):
            # A page that uses this response's nonce would carry a stale one when replayed,
            # and its scripts would be blocked: such pages are not stored.
            for part in value.split(b"'nonce-")[1:]:
                nonce = part.partition(b"'")[0]
                if nonce and nonce in pending.body:
                    return False
    return _vary_ok(varies, pending.policy)
