"""API versions chosen by a request header, served by the same routes as URL-prefix versions.

Serve each version under its prefix (``app.include(PostsV1, "/v1")``...), then
``app.add_middleware(HeaderVersioning, versions={"1": "/v1", "2": "/v2"}, default="2")``:
``GET /posts`` with ``API-Version: 1`` is served by ``/v1/posts``. A path that already
names a version is left alone, so both styles work side by side.
"""

from __future__ import annotations

from collections.abc import Mapping

from transom._types import ASGIApp, Receive, Scope, Send
from transom.responses import JSONResponse

__all__ = ["HeaderVersioning"]


class HeaderVersioning:
    """ASGI middleware: route a request by its version header to that version's URL prefix.

    Args:
        app: The wrapped application.
        versions: Header value -> URL prefix (``{"1": "/v1"}``).
        default: The version of requests without the header (``None``: they are left alone).
        header: The request header (case-insensitive).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        versions: Mapping[str, str],
        default: str | None = None,
        header: str = "api-version",
    ) -> None:
        if default is not None and default not in versions:
            raise ValueError(f"default version {default!r} is not one of {sorted(versions)}")
        self.app = app
        self.versions = dict(versions)
        self.default = default
        self.header = header.lower().encode("latin-1")
        self.prefixes = tuple(self.versions.values())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if any(path == p or path.startswith(p + "/") for p in self.prefixes):
            await self.app(scope, receive, send)
            return
        wanted = next(
            (v.decode("latin-1").strip() for k, v in scope["headers"] if k == self.header),
            self.default,
        )
        if wanted is None:
            await self.app(scope, receive, send)
            return
        prefix = self.versions.get(wanted)
        if prefix is None:
            response = JSONResponse(
                {"detail": f"Unknown API version {wanted!r}; known: {sorted(self.versions)}"},
                400,
            )
            await response.send_to(scope, send, [])
            return
        child = dict(scope)
        child["path"] = prefix + path
        if "raw_path" in child and child["raw_path"] is not None:
            child["raw_path"] = prefix.encode("latin-1") + child["raw_path"]
        await self.app(child, receive, send)
