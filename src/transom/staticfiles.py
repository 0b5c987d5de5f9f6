"""Serving static files safely, and collecting them into fingerprinted copies for production.

:class:`StaticFiles` is an ASGI app that serves one or more directories. A request path can
never name a file outside them: ``..`` segments, backslashes, NUL bytes, drive letters and
symlinks that lead out are all refused with 404, after the path is resolved on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transom._concurrency import run_sync
from transom._types import Receive, Scope, Send
from transom.datastructures import Headers
from transom.files import FileResponse
from transom.responses import PlainTextResponse

__all__ = ["MANIFEST_NAME", "StaticFiles", "collect_static", "fingerprint_name"]

MANIFEST_NAME = "staticfiles.json"
# name.<12 hex>.ext: the content hash collect_static adds; such files never change.
_FINGERPRINTED = re.compile(r"\.[0-9a-f]{12}\.[^./]+$")
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"


class StaticFiles:
    """Serve files from ``directories`` (the first that has a path wins).

    Responses carry ``ETag``/``Last-Modified`` and honour conditional and range requests.
    Fingerprinted names (``site.0123456789ab.css``) get a one-year immutable cache; others
    must be revalidated. A ``.br`` or ``.gz`` file next to the requested one is sent instead
    when the client accepts that encoding.
    """

    def __init__(
        self,
        directories: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        follow_symlinks: bool = False,
    ) -> None:
        if isinstance(directories, str | os.PathLike):
            directories = [directories]
        self.directories = [Path(d) for d in directories]
        self.follow_symlinks = follow_symlinks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            refused = PlainTextResponse("Method Not Allowed", 405, {"Allow": "GET, HEAD"})
            await refused(scope, receive, send)
            return
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        found = await run_sync(self._find, path)
        if found is None:
            await PlainTextResponse("Not Found", 404)(scope, receive, send)
            return
        file_path, stat_result, directory, relative = found
        headers = {
            "Cache-Control": _IMMUTABLE if _FINGERPRINTED.search(file_path.name) else _REVALIDATE
        }
        encoded = await run_sync(
            self._precompressed, directory, relative, Headers(scope["headers"])
        )
        if encoded is not None:
            variant, encoding, variant_stat = encoded
            headers["Content-Encoding"] = encoding
            headers["Vary"] = "Accept-Encoding"
            media_type = mimetypes.guess_type(file_path.name)[0] or "application/octet-stream"
            response = FileResponse(
                variant, headers=headers, stat_result=variant_stat, media_type=media_type
            )
        else:
            headers["Vary"] = "Accept-Encoding"
            response = FileResponse(file_path, headers=headers, stat_result=stat_result)
        await response(scope, receive, send)

    def lookup(self, request_path: str) -> tuple[Path, os.stat_result] | None:
        """Resolve a request path to a regular file inside one of the directories, or None."""
        found = self._find(request_path)
        return None if found is None else (found[0], found[1])

    def _find(self, request_path: str) -> tuple[Path, os.stat_result, Path, str] | None:
        relative = _safe_relative(request_path)
        if relative is None:
            return None
        for directory in self.directories:
            found = self._resolve(directory, relative)
            if found is not None:
                return found[0], found[1], directory, relative
        return None

    def _resolve(self, directory: Path, relative: str) -> tuple[Path, os.stat_result] | None:
        """``directory/relative`` as a regular file that stays inside ``directory``, or None."""
        try:
            real = (directory / relative).resolve(strict=True)
            base = directory.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not self.follow_symlinks and not real.is_relative_to(base):
            return None
        try:
            stat_result = real.stat()
        except OSError:
            return None
        if not os.path.isfile(real):
            return None
        return real, stat_result

    def _precompressed(
        self, directory: Path, relative: str, headers: Headers
    ) -> tuple[Path, str, os.stat_result] | None:
        accepted = {
            part.split(";", 1)[0].strip().lower()
            for part in str(headers.get("accept-encoding", "")).split(",")
        }
        for encoding, suffix in (("br", ".br"), ("gzip", ".gz")):
            if encoding not in accepted:
                continue
            # The variant is looked up like any requested file, so a "site.css.gz" symlink
            # that leads out of the folder is refused exactly as "site.css" would be.
            found = self._resolve(directory, relative + suffix)
            if found is not None:
                return found[0], encoding, found[1]
        return None


def _safe_relative(request_path: str) -> str | None:
    """Turn ``/css/site.css`` into ``css/site.css``; None for anything that could escape."""
    if "\x00" in request_path or "\\" in request_path:
        return None
    parts = [p for p in request_path.split("/") if p]
    if not parts:
        return None
    for part in parts:
        if part in (".", "..") or ":" in part:
            return None
    return "/".join(parts)


def fingerprint_name(path: Path, content: bytes) -> str:
    """``site.css`` with content hash ``0123456789ab...`` -> ``site.0123456789ab.css``."""
    digest = hashlib.sha256(content).hexdigest()[:12]
    stem, dot, suffix = path.name.rpartition(".")
    if not dot:
        return f"{path.name}.{digest}"
    return f"{stem}.{digest}.{suffix}"


def collect_static(
    sources: Sequence[Path], target: Path, *, compress: bool = True
) -> dict[str, str]:
    """Copy every file of ``sources`` into ``target`` under its own and a fingerprinted name,
    gzip text assets, and write the manifest that maps one to the other. Earlier sources
    win when two hold the same path. Returns the manifest."""
    target.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, str] = {}
    for source in sources:
        if not source.is_dir():
            continue
        base = source.resolve()
        for file in sorted(source.rglob("*")):
            if not file.is_file() or file.suffix in (".gz", ".br"):
                continue
            if not file.resolve().is_relative_to(base):
                continue  # a symlink out of the folder: never publish what it points to
            relative = file.relative_to(source).as_posix()
            if relative in manifest or relative == MANIFEST_NAME:
                continue
            content = file.read_bytes()
            hashed = file.relative_to(source).with_name(fingerprint_name(file, content)).as_posix()
            for name in (relative, hashed):
                destination = target / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, destination)
                if compress and _compressible(file) and len(content) > 256:
                    gz = destination.with_name(destination.name + ".gz")
                    gz.write_bytes(gzip.compress(content, mtime=0))
            manifest[relative] = hashed
    (target / MANIFEST_NAME).write_text(json.dumps({"version": 1, "paths": manifest}, indent=1))
    return manifest


def _compressible(path: Path) -> bool:
    return path.suffix.lower() in {".css", ".js", ".mjs", ".svg", ".html", ".txt", ".json", ".map"}


def load_manifest(directory: Path) -> dict[str, str] | None:
    try:
        data: Any = json.loads((directory / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    paths = data.get("paths") if isinstance(data, dict) else None
    return paths if isinstance(paths, dict) else None
